# haproxy for the tests that go through a real HAProxy with the configuration
# of KumoMTA's proxy guide (issue 19; tests/peers/haproxy.py): Debian's
# package, installed with apt-get when it is missing; a no-op when it is
# there. The tests start their own haproxy on free loopback ports; `usesrc
# clientip` needs root, so a run that is not root skips them and says why.
.PHONY: haproxy

haproxy: ## install Debian's haproxy if it is missing (the tests run it)
	@command -v haproxy >/dev/null || test -x /usr/sbin/haproxy || { \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends haproxy; }

test-python test-integration test-conformance: haproxy
