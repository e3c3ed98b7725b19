# SPDX-License-Identifier: GPL-2.0
#
# rust_resched_probe: out-of-tree Rust kernel module (Rust-for-Linux out-of-tree module layout).
#
#   make            build resched_probe.ko against KDIR (default: the cached 6.12 kernel, built if missing)
#   make run        set-up, kernel, module; boot QEMU, load, show the counters under load, unload
#   make check      the host unit tests (make unit), then for both kernels (6.12 and 7.3; CHECK_KERNELS=...:
#                   some): set-up, kernel, warning-free module, fmtcheck, clippy, then the QEMU boot test, the
#                   isolated-CPU boot (isolcpus=3 nohz_full=3) and the scale boot (512 possible CPUs, 4 online)
#   make check-rt   the boot test and scale boot on 7.3 built PREEMPT_RT with lockdep (KCONFIG=rt)
#   make check-systemd  the module installed by DKMS and loaded at boot by systemd (7.3, KCONFIG=systemd)
#   make unit       the host unit tests alone, in seconds (logic/unit, the tool's tests)
#   make stress     stress test on the debug kernel (KCONFIG=default: on the normal one)
#   make check-arm64  the arm64 boot test: the module cross-built for the arm64 kernel (KCONFIG=arm64),
#                   booted under qemu-system-aarch64 (4 CPUs, then 512 possible with 4 online)
#   make bench      benchmark (module vs bpftrace vs empty kprobes) in one guest run: bench/out/ (7.3: out-7.3/)
#   make fallback   the module that counts with the fallback kprobes only, in .build-fallback/ (make check uses it)
#   make testmod    the race checks' test module (qemu/modules), for KCONFIG's kernel, in .build-testmod-KCONFIG/
#   make kernel     build (or reuse) the cached kernel; KCONFIG=debug for the debug configuration
#   KVER=7.3        any of these against Debian's 7.3 kernel (trixie-backports' linux-source-7.3, fetched by
#                   scripts/linux-source.sh) instead of 6.12: its module builds in .build-7.3-<config>/
#   make -s kdir    print the kernel build tree;  make -s kimage   print its bzImage
#   make install | install-tool | install-boot | dkms   install the module (extra/), the tool (completions,
#                   man pages), the boot-time load, or the module through DKMS: docs/install.md
#   make rust-analyzer | fmt | fmtcheck | clippy | clean

KCONFIG ?= default
export KCONFIG
KVER ?= 6.12
export KVER
REPO := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
CACHED_KDIR := $(shell KVER=$(KVER) $(REPO)/scripts/kernel.sh kdir $(KCONFIG))
KDIR ?= $(CACHED_KDIR)

# The module builds in the repo for the default 6.12 kernel; for another configuration, in a copy of the
# sources in .build-<config>/ of this clone (not in git), so that each build and each clone keeps its
# own objects. On 7.3 every folder of this kind has `7.3-` before its configuration (.build-7.3-default/,
# .build-7.3-fallback/, .build-testmod-7.3-debug/): no object is shared with a 6.12 build.
KTAG := $(if $(filter-out 6.12,$(KVER)),$(KVER)-)
ifeq ($(KTAG)$(KCONFIG),default)
MODDIR := $(REPO)
else
MODDIR := $(REPO)/.build-$(KTAG)$(KCONFIG)
endif
# `make fallback` builds, in .build-fallback/, the module that counts with the fallbacks only (kprobes on
# the send functions, a kretprobe on ttwu_queue_wakelist), as on a kernel without the ipi and csd
# tracepoints: the boot test checks it too. Kbuild turns RRP_FALLBACK_ONLY into the cfg `rrp_fallback_only`.
ifeq ($(RRP_FALLBACK_ONLY),1)
MODDIR := $(REPO)/.build-$(KTAG)fallback$(filter-out -default,-$(KCONFIG))
export RRP_FALLBACK_ONLY
endif
export RRP_KO := $(MODDIR)/resched_probe.ko
# The fallback-only build for this kernel, which the boot test loads for its `fallback` part.
export RRP_FALLBACK_KO := $(REPO)/.build-$(KTAG)fallback$(filter-out -default,-$(KCONFIG))/resched_probe.ko
# The module's sources: Kbuild, the crate root, and its two folders (logic/, sys/).
MOD_DIRS := logic logic/noise logic/report sys sys/tracepoint
MOD_SRCS := Kbuild rust_resched_probe.rs $(foreach d,$(MOD_DIRS),$(filter-out %/bindings_generated.rs, \
	$(patsubst $(REPO)/%,%,$(wildcard $(REPO)/$(d)/*.rs $(REPO)/$(d)/*.c $(REPO)/$(d)/*.h))))

export PATH := /usr/lib/llvm-19/bin:$(HOME)/.cargo/bin:$(PATH)
BINDGEN ?= $(shell command -v bindgen || echo bindgen)
# KCONFIG=arm64 cross-builds for the arm64 kernel (clang and rustc's aarch64 target).
KARCH := $(if $(filter arm64,$(KCONFIG)),ARCH=arm64)
KMAKE := $(MAKE) -C $(KDIR) M=$(MODDIR) $(KARCH) LLVM=1 RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc \
	BINDGEN=$(BINDGEN) CLIPPY_DRIVER=/usr/bin/clippy-driver
RUSTFMT := /usr/bin/rustfmt
# rustfmt follows `mod` from the crate root into logic/ and sys/ (not into the generated bindings).
RS_SRCS := rust_resched_probe.rs logic/unit/lib.rs

# Build the cached kernel first only when building against it.
ifeq ($(KDIR),$(CACHED_KDIR))
KERNEL_DEP := kernel
endif

.PHONY: install install-tool install-boot dkms mod-srcs \
	testmod testmod-ko fallback default modules tool tool-check unit kernel kdir kimage setup run check check-build test bench bench-modules \
	stress sources ko rust-analyzer fmt fmtcheck clippy clean check-arm64 check-rt check-systemd

default: modules tool

# The user-side tool (tools/resched, a cargo crate with its lock file): tools/resched/target/release/resched.
TOOL_DIR := $(REPO)/tools/resched
TOOL := $(TOOL_DIR)/target/release/resched
TOOL_ARGS := --locked --manifest-path $(TOOL_DIR)/Cargo.toml
tool:
	cargo build $(TOOL_ARGS) --release -q

# The tool's host checks: rustfmt and clippy (warnings are errors); its unit tests run in `make unit`.
tool-check:
	cd $(TOOL_DIR) && cargo fmt --check
	cargo clippy $(TOOL_ARGS) --release -q -- -D warnings

# The host unit tests, in seconds: the module's kernel-free logic (logic/unit) and the tool's.
unit:
	$(REPO)/scripts/unit.sh

modules: $(KERNEL_DEP) sources
	$(KMAKE) modules
	$(REPO)/scripts/symbols.sh $(KDIR) $(MODDIR)/resched_probe.ko

sources:
ifneq ($(MODDIR),$(REPO))
	mkdir -p $(addprefix $(MODDIR)/,$(MOD_DIRS))
	# A source removed or moved in the repo goes from the copy too (a stale logic/report.rs would
	# clash with logic/report/mod.rs).
	cd $(MODDIR) && find $(MOD_DIRS) -maxdepth 1 \( -name '*.rs' -o -name '*.c' -o -name '*.h' \) \
		! -name bindings_generated.rs -delete
	cd $(REPO) && cp -p --parents $(MOD_SRCS) $(MODDIR)/
endif

kernel:
	$(REPO)/scripts/kernel.sh build $(KCONFIG)

kdir:
	@echo $(CACHED_KDIR)

kimage:
	@$(REPO)/scripts/kernel.sh kimage $(KCONFIG)

setup:
	$(REPO)/scripts/setup.sh

# The module with every Rust and C warning as an error.
check-build: $(KERNEL_DEP) sources
	$(KMAKE) clean >/dev/null
	@$(KMAKE) modules KCFLAGS=-Werror KRUSTFLAGS=-Dwarnings >$(REPO)/.build.log 2>&1; rc=$$?; \
	cat $(REPO)/.build.log; [ $$rc = 0 ] || exit $$rc; \
	! grep -iE '(^|[^_])warning:' $(REPO)/.build.log || { echo "error: the module build has warnings" >&2; exit 1; }
	$(REPO)/scripts/symbols.sh $(KDIR) $(MODDIR)/resched_probe.ko

# The fallback-only module (see RRP_FALLBACK_ONLY above), with warnings as errors: .build-fallback/.
fallback:
	$(MAKE) -C $(REPO) RRP_FALLBACK_ONLY=1 check-build >/dev/null

# The race checks' test module (qemu/modules/rrp_races.c: KVM's notifier churn, a move while attaching), built with
# warnings as errors for KCONFIG's kernel in a folder of its own (not in git); the guest gets its path.
TESTMOD_DIR := $(REPO)/.build-testmod-$(KTAG)$(KCONFIG)
export RRP_TESTMOD := $(TESTMOD_DIR)/rrp_races.ko
testmod: $(KERNEL_DEP)
	mkdir -p $(TESTMOD_DIR)
	cp -p $(REPO)/qemu/modules/Kbuild $(REPO)/qemu/modules/*.c $(TESTMOD_DIR)/
	$(MAKE) -C $(KDIR) M=$(TESTMOD_DIR) $(KARCH) LLVM=1 KCFLAGS=-Werror modules

# The test module's path, for scripts/check.sh.
testmod-ko:
	@echo $(RRP_TESTMOD)

# The load generator the guest scripts run (a host binary; the guest shares the host's root).
LOAD := $(REPO)/tools/rrp-load
$(LOAD): $(REPO)/tools/rrp-load.c
	$(HOSTCC) -O2 -Wall -Wextra -Werror -pthread -o $@ $<
HOSTCC ?= gcc

run: setup
	$(MAKE) -C $(REPO) modules tool $(LOAD)
	$(REPO)/qemu/boot.sh run

# Every kernel of CHECK_KERNELS (both: 6.12 and 7.3), each with its build checks and three boots: the boot
# test, the isolated-CPU boot (isolcpus=3 nohz_full=3: noise/ on CPU 3), then the scale test (512 possible
# CPUs, 4 online, under bookworm-backports' QEMU 10: scripts/qemu-x2apic.sh); the kernels' boots side by
# side (scripts/check.sh). One `N passed, N failed`.
# `make check CHECK_KERNELS=7.3`: one kernel only.
CHECK_KERNELS ?= 6.12 7.3
check: setup
	CHECK_KERNELS="$(CHECK_KERNELS)" $(REPO)/scripts/check.sh

# The arm64 boot test (scripts/check.sh with CHECK_ARCH=arm64): the arm64 kernel (cached like the others),
# the module built for it with warnings as errors, the load generator cross-built static in a sysroot of
# Debian arm64 packages, an initramfs of Debian arm64 packages, then three boots under qemu-system-aarch64:
# the boot test (its parts for arm64), the isolated CPU (noise/) and 512 possible CPUs with 4 online. One
# `N passed, N failed`.
LOAD_ARM64 := $(REPO)/tools/rrp-load-arm64
$(LOAD_ARM64): $(REPO)/tools/rrp-load.c
	$(REPO)/scripts/arm64-root.sh build
	clang --target=aarch64-linux-gnu --sysroot=$$($(REPO)/scripts/arm64-root.sh sysroot) -fuse-ld=lld -static \
		-O2 -Wall -Wextra -Werror -pthread -o $@ $<

check-arm64:
	CHECK_ARCH=arm64 CHECK_KERNELS="$(KVER)" $(REPO)/scripts/check.sh

# The boot test on the PREEMPT_RT kernel (7.3, KCONFIG=rt: qemu/rt.config, with lockdep and
# DEBUG_ATOMIC_SLEEP), its build checks first. One `N passed, N failed`. Not the scale boot: 512 CPUs on
# RT with lockdep take over 11 min under TCG to reach init alone, and what it checks (tables sized by
# the CPU count) is the same on every kernel; CHECK_BOOTS="check scale" runs it too.
check-rt:
	$(REPO)/scripts/setup.sh
	CHECK_KCONFIG=rt CHECK_KERNELS=7.3 CHECK_BOOTS="$${CHECK_BOOTS:-check}" BOOT_TIMEOUT=$${BOOT_TIMEOUT:-2700} \
		$(REPO)/scripts/check.sh

# The module loaded at boot by systemd: DKMS installs it for the 7.3 kernel built for systemd as init
# (KCONFIG=systemd), make install-boot puts the modules-load.d snippet in /etc, and the kernel boots with
# systemd (scripts/systemd-boot.sh; make check runs it after its boots unless CHECK_SYSTEMD=0). One `N passed, N failed`.
check-systemd:
	$(REPO)/scripts/setup.sh
	$(REPO)/scripts/systemd-boot.sh

# Stress on the debug kernel (KASAN, lockdep, KFENCE, debug objects); `make stress KCONFIG=default` on
# the normal one.
stress: KCONFIG := $(if $(filter command line,$(origin KCONFIG)),$(KCONFIG),debug)
stress:
	$(REPO)/scripts/setup.sh
	$(MAKE) -C $(REPO) KCONFIG=$(KCONFIG) modules testmod $(LOAD)
	KCONFIG=$(KCONFIG) RRP_KO=$$($(MAKE) -s --no-print-directory -C $(REPO) KCONFIG=$(KCONFIG) ko) \
		RRP_TESTMOD=$(REPO)/.build-testmod-$(KTAG)$(KCONFIG)/rrp_races.ko \
		BOOT_TIMEOUT=$${BOOT_TIMEOUT:-7200} $(REPO)/qemu/boot.sh stress

# The module built for KCONFIG.
ko:
	@echo $(RRP_KO)

# The module's source files, for scripts/dkms.sh (what DKMS copies to /usr/src).
mod-srcs:
	@echo $(MOD_SRCS)

# Installing (docs/install.md). `make install`: the built module into /lib/modules/<release>/extra/ of
# INSTALL_MOD_PATH (default /), then depmod. `make install-tool`: the tool into PREFIX/bin (default
# /usr/local), its bash, zsh and fish completions and man pages, generated from its clap definitions.
# `make install-boot`: /etc/modules-load.d/resched_probe.conf (loaded at every boot). `make dkms`: DKMS
# builds and installs it for KDIR's kernel now and rebuilds it after kernel upgrades (scripts/dkms.sh).
PREFIX ?= /usr/local
install: modules
	$(KMAKE) modules_install INSTALL_MOD_DIR=extra $(if $(INSTALL_MOD_PATH),INSTALL_MOD_PATH=$(INSTALL_MOD_PATH))

install-tool: tool
	install -D -m 755 $(TOOL) $(DESTDIR)$(PREFIX)/bin/resched
	mkdir -p $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
		$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d $(DESTDIR)$(PREFIX)/share/man/man1
	$(TOOL) completions bash >$(DESTDIR)$(PREFIX)/share/bash-completion/completions/resched
	$(TOOL) completions zsh >$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_resched
	$(TOOL) completions fish >$(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/resched.fish
	$(TOOL) manpages $(DESTDIR)$(PREFIX)/share/man/man1

install-boot:
	install -D -m 644 $(REPO)/dkms/resched_probe.conf $(DESTDIR)/etc/modules-load.d/resched_probe.conf

dkms:
	$(REPO)/scripts/dkms.sh install $(KDIR)

# The benchmark: one guest run, every configuration interleaved; writes bench/out/ (7.3: bench/out-7.3/).
# The reference modules build in bench/modules/ for KVER's kernel: one benchmark at a time.
BENCH_OUT := $(REPO)/bench/out$(if $(KTAG),-$(KVER))
bench:
	$(REPO)/scripts/setup.sh --bench
	$(MAKE) -C $(REPO) modules bench-modules $(LOAD)
	BENCH_OUT=$(BENCH_OUT) BOOT_TIMEOUT=$${BOOT_TIMEOUT:-2700} $(REPO)/qemu/boot.sh bench
	/usr/bin/python3 $(REPO)/bench/report.py $(BENCH_OUT)

# The benchmark's floor: empty kprobes on the same symbols (a C reference module).
bench-modules: $(KERNEL_DEP)
	$(MAKE) -C $(KDIR) M=$(REPO)/bench/modules LLVM=1 KCFLAGS=-Werror modules

rust-analyzer: $(KERNEL_DEP)
	$(KMAKE) rust-analyzer

fmt: $(KERNEL_DEP)
	cd $(REPO) && $(RUSTFMT) --config-path $(KDIR)/.rustfmt.toml $(RS_SRCS)

fmtcheck: $(KERNEL_DEP)
	cd $(REPO) && $(RUSTFMT) --check --config-path $(KDIR)/.rustfmt.toml $(RS_SRCS)

clippy: $(KERNEL_DEP) sources
	$(KMAKE) clean >/dev/null
	@$(KMAKE) modules CLIPPY=1 KRUSTFLAGS=-Dwarnings >$(REPO)/.clippy.log 2>&1; rc=$$?; \
	cat $(REPO)/.clippy.log; [ $$rc = 0 ] || exit $$rc; \
	! grep -iE '(^|[^_])warning:' $(REPO)/.clippy.log || { echo "error: clippy has warnings" >&2; exit 1; }

clean:
	-$(KMAKE) clean
	-$(MAKE) -C $(KDIR) M=$(REPO)/bench/modules clean
	rm -rf $(REPO)/.build-$(KTAG)fallback* $(REPO)/.build-testmod-*
	rm -f $(LOAD) $(LOAD_ARM64) $(REPO)/.build.log $(REPO)/.clippy.log $(REPO)/rust-project.json
