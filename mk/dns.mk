# dnsmasq for the tests of kumo.dns: Debian's dnsmasq-base (the binary, without
# the system service), installed with apt-get when it is missing; a no-op when
# it is there. The tests start their own servers on free ports (tests/datasources.py).
.PHONY: dnsmasq

dnsmasq: ## install Debian's dnsmasq-base if it is missing (the tests run it)
	@command -v dnsmasq >/dev/null || test -x /usr/sbin/dnsmasq || { \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends dnsmasq-base; }

test-python test-unit test-integration: dnsmasq
