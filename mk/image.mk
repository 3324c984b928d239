# Container image (issue 14): `make image` builds dist/egress-resolver.oci.tar
# from Debian packages and the Python wheels, with no base image pulled
# (deploy/image/build.sh: mmdebstrap, umoci; deploy/image/wheels.py picks the
# wheels for the image's own Python); `make image-test` runs it (tests/image).
# `make test` builds and tests it when run as root, as CI is (`test-image`,
# about 2 minutes from clean); it needs root (mmdebstrap's root mode, chroot),
# so a run that is not root skips it and says so. The tools come from Debian
# (apt-get).
IMAGE := $(DIST)/egress-resolver.oci.tar
IMAGE_WORK := build/image
IMAGE_TOOLS := mmdebstrap umoci
# podman only loads the archive in `make image-test` (`podman load`, no container is run).
IMAGE_TEST_TOOLS := podman
IMAGE_TOOLS_STAMP := build/.image-tools
.PHONY: image image-test image-tools test-image

CLIENT_TEST_TARGETS += test-image

$(IMAGE_TOOLS_STAMP):
	@missing=""; for tool in $(IMAGE_TOOLS) $(IMAGE_TEST_TOOLS); do \
	  command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt-get install$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends$$missing \
	    $$(case "$$missing" in *podman*) echo crun;; esac) >/dev/null; fi
	mkdir -p $(dir $@) && touch $@

image-tools: $(IMAGE_TOOLS_STAMP) ## apt-get install what `make image` and `make image-test` use

image: $(IMAGE) ## build dist/egress-resolver.oci.tar (Debian bookworm + the wheels; OCI archive and docker-archive)

$(IMAGE): $(IMAGE_TOOLS_STAMP) $(PY_CLIENT_WHEEL) $(PY_SERVER_WHEEL) deploy/image/build.sh deploy/image/wheels.py deploy/image/archive.py
	PYTHON=$(CURDIR)/$(PY) deploy/image/build.sh $(VERSION) $(DIST) $(IMAGE_WORK) $@

image-test: $(STAMP) $(IMAGE) ## unpack the image, run its entry point as its user, resolve through its socket
	EGRESS_IMAGE=$(CURDIR)/$(IMAGE) $(BIN)/pytest tests/image -q -s

ifeq ($(shell id -u),0)
test-image: image-test ## `make test`'s part: make image and image-test as root, a line saying why not otherwise
else
test-image:
	@echo "image: skipped, building the image needs root (mmdebstrap, chroot)"
endif
