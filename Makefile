# Thin wrapper: dependencies, build, demo, tests.  The build itself is meson.
#
#   make            build everything into build/
#   make demo       run the main job: an unmodified CUDA program through the
#                   libcuda shim against vgcd (cpu executor when no GPU),
#                   over a socket and inside a VM over the virtio device
#   make check      all tests; ends with "N passed, N failed"
#   make qemu       QEMU with the device (cached outside the tree)
#
# Both install what they need on a fresh Debian 12 machine (apt packages,
# Debian's QEMU source, the guest kernel); the CUDA toolkit is expected at
# /usr/local/cuda.

BUILD   ?= build
ASAN    ?= build-asan
FUZZ    ?= build-fuzz
APT_PACKAGES = meson ninja-build pkg-config gcc clang libclang-rt-14-dev \
               libglib2.0-dev libzstd-dev nettle-dev python3 python3-venv dpkg-dev \
               linux-libc-dev make kmod cpio busybox-static qemu-system-x86 \
               libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev \
               libjson-glib-dev libcurl4-openssl-dev etcd-server

.PHONY: all deps build demo check asan fuzz clean

all: build

deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	        apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@test -f /usr/local/cuda/include/cudaTypedefs.h || \
	    { echo "the CUDA toolkit is expected at /usr/local/cuda"; exit 1; }

# vgcd's vhost-user backend links libvhost-user built from Debian's QEMU
# source (hw/libvhost-user.sh fetches it with apt and caches the build).
$(BUILD)/build.ninja: | deps
	meson setup $(BUILD) -Dlibvhost_user="$$(hw/libvhost-user.sh)"

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(ASAN)/build.ninja: | deps
	meson setup $(ASAN) -Db_sanitize=address,undefined -Db_lundef=false \
	    -Dlibvhost_user="$$(hw/libvhost-user.sh)"

asan: deps $(ASAN)/build.ninja
	ninja -C $(ASAN)

# libFuzzer wants coverage in the code under test: all of it is built with
# -fsanitize=fuzzer-no-link; only the fuzz targets link libFuzzer itself.
$(FUZZ)/build.ninja: | deps
	CC=clang meson setup $(FUZZ) -Dfuzz=true -Db_lundef=false \
	    -Db_sanitize=address,undefined -Dc_args=-fsanitize=fuzzer-no-link

fuzz: deps $(FUZZ)/build.ninja
	ninja -C $(FUZZ) tests/fuzz/fuzz_frame tests/fuzz/fuzz_ptx tests/fuzz/fuzz_record

demo: build qemu
	tests/demo/demo.sh $(BUILD)

check: build asan fuzz qemu
	python3 tests/run.py --build $(BUILD) --asan-build $(ASAN) --fuzz-build $(FUZZ)

clean:
	rm -rf $(BUILD) $(ASAN) $(FUZZ)

# QEMU with the vhost-user-gpu-compute-pci device, built from Debian's QEMU
# source and cached outside the tree (hw/README.md); the binary's path goes
# to $(BUILD)/qemu-path.  libvhost-user prints "LIBDIR SRCDIR".
.PHONY: qemu libvhost-user
qemu: deps
	@mkdir -p $(BUILD)
	@p=$$(hw/build-qemu.sh) || exit 1; p=$$(echo "$$p" | tail -n 1); \
	    echo "$$p" > $(BUILD)/qemu-path; echo "qemu: $$p"

libvhost-user:
	@hw/build-qemu.sh --libvhost-user
