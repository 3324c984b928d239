# redis-server for the tests of policies that read live data (issue 13):
# Debian's package, installed with apt-get when it is missing; a no-op when
# it is there. The tests start their own servers on free ports.
.PHONY: redis-server

redis-server: ## install Debian's redis-server if it is missing (the tests run it)
	@command -v redis-server >/dev/null || test -x /usr/bin/redis-server || { \
	  apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server; }

test-python test-unit test-integration: redis-server
