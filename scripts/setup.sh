#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Idempotent set-up: installs what the build, the boot test and the tools need, skips what is present,
# and says which versions it got. Run by `make run` and `make check` before anything else.
set -euo pipefail

# Versions verified to build and boot this project (see ../shared/KERNEL-NOTES.md and README.md).
KNOWN_RUSTC="1.96"
KNOWN_KERNEL="6.12"

APT_PKGS=(
	linux-source-6.12 rustc-web rust-web-src rust-web-clippy rustfmt-web
	clang-19 lld-19 llvm-19 libclang-19-dev
	bc flex bison libelf-dev libssl-dev cpio pahole kmod make xz-utils
	qemu-system-x86 busybox-static udev
	python3 python3-pip gcc libc6-dev
	bpftrace prometheus-node-exporter prometheus
	chromium python3-pil dkms man-db systemd systemd-sysv
)
# bpftrace: the latency checks' independent measurement (and the benchmark's comparison);
# prometheus-node-exporter and prometheus (promtool): the `resched export` checks.
# chromium and python3-pil: the tool's pictures rendered headless and their screenshots read
# (tools/resched/tests/browser.py); dkms and man-db: scripts/dkms.sh test (DKMS, the man pages);
# systemd and systemd-sysv (/sbin/init): the guest of the systemd boot boots this machine's systemd
# (scripts/systemd-boot.sh; container images often have none).
# The 7.3 kernel's source (KVER=7.3) is not installed: scripts/linux-source.sh fetches it into the cache.

# `setup.sh --bench` adds what `make bench` needs beyond: matplotlib (the chart).
[ "${1:-}" = --bench ] && APT_PKGS+=(python3-matplotlib)
# `setup.sh --arm64` adds qemu-system-aarch64 (make check-arm64; scripts/arm64-root.sh fetches the arm64
# packages of the guest's root).
[ "${1:-}" = --arm64 ] && APT_PKGS+=(qemu-system-arm)

RRP_LOG=setup
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
die() { log "error: $*"; exit 1; }

missing=()
for p in "${APT_PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	log "installing Debian packages: ${missing[*]}"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
	log "Debian packages: all present"
fi

# bindgen from crates.io (the kernel needs >= 0.65.1).
export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v bindgen >/dev/null 2>&1; then
	command -v cargo >/dev/null 2>&1 || die "cargo not found: install rustup/cargo to get bindgen-cli"
	log "installing bindgen-cli from crates.io (~2 min)"
	cargo install --locked -q bindgen-cli
fi

# virtme-ng from PyPI (boots the built kernel with the host's root file system, read-only).
if ! command -v vng >/dev/null 2>&1; then
	log "installing virtme-ng from PyPI"
	python3 -m pip install -q virtme-ng 2>/dev/null ||
		python3 -m pip install -q --break-system-packages virtme-ng
fi
command -v vng >/dev/null 2>&1 || die "vng not on PATH after installing virtme-ng"

rustc_v=$(/usr/bin/rustc --version | awk '{print $2}')
kver=$(dpkg-query -W -f='${Version}' linux-source-6.12)
log "got rustc $rustc_v (/usr/bin/rustc, known to work: $KNOWN_RUSTC.x), $(bindgen --version),"
log "    linux-source $kver (known to work: $KNOWN_KERNEL.x), clang $(/usr/lib/llvm-19/bin/clang --version | head -1 | awk '{print $NF}'), vng $(vng --version 2>/dev/null | awk '{print $NF}')"
case "$rustc_v" in
	"$KNOWN_RUSTC".*) ;;
	*) log "WARNING: rustc $rustc_v is not the verified $KNOWN_RUSTC.x; the kernel build may fail with it" ;;
esac
