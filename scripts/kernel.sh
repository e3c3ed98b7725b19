#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The Rust-enabled kernel this module is built and tested against, cached outside the repo: 6.12, or 7.3
# with KVER=7.3 (the source tarball comes from scripts/linux-source.sh).
#
#   scripts/kernel.sh kdir   [KCONFIG]   print the build tree path (whether or not it is built yet)
#   scripts/kernel.sh kimage [KCONFIG]   print the kernel image path (bzImage; arm64: Image)
#   scripts/kernel.sh build  [KCONFIG]   extract, configure and build it unless that is already done
#
# KCONFIG is `default` (tinyconfig + qemu/kernel.config), `debug` (+ qemu/debug.config), `rt` (PREEMPT_RT
# with lockdep: + qemu/rt.config), `systemd` (systemd as init: + qemu/systemd.config) or `arm64`
# (ARCH=arm64, tinyconfig + qemu/arm64.config, cross-built by clang and rustc's aarch64 target). The cache
# entry is keyed by the linux-source package version and a hash of the fragments and the toolchain, so an
# unchanged fragment never rebuilds and a changed one gets a tree of its own. KVER (environment) is 6.12
# (default) or 7.3; on 7.3 the fragments' CONFIG_PROC_SYSCTL=y (an option 7.3 no longer has) becomes
# CONFIG_SYSCTL=y and CONFIG_CFI_CLANG=y CONFIG_CFI=y, and the key hashes the fragment as substituted.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cmd=${1:-build}
kconfig=${2:-${KCONFIG:-default}}
kver=${KVER:-6.12}

fragments=("$here/qemu/kernel.config")
arch=x86
image=arch/x86/boot/bzImage
target=bzImage
case "$kconfig" in
	default) ;;
	debug) fragments+=("$here/qemu/debug.config") ;;
	# PREEMPT_RT: kernel.config's model lines are left out of the fragment (see fragment() below).
	rt) fragments+=("$here/qemu/rt.config") ;;
	# systemd as init (the boot-time load of issue 27): + qemu/systemd.config.
	systemd) fragments+=("$here/qemu/systemd.config") ;;
	arm64) fragments=("$here/qemu/arm64.config"); arch=arm64; image=arch/arm64/boot/Image; target=Image ;;
	*) echo "kernel.sh: unknown KCONFIG '$kconfig' (default, debug, rt, systemd or arm64)" >&2; exit 2 ;;
esac
# The fragment as the kernel gets it: the files as they are on 6.12; on 7.3, CONFIG_PROC_SYSCTL=y is
# CONFIG_SYSCTL=y (7.3 dropped PROC_SYSCTL; SYSCTL is what the fragment needs from it) and
# CONFIG_CFI_CLANG=y is CONFIG_CFI=y (CFI_CLANG is a transitional option there, never in .config).
# With KCONFIG=rt, kernel.config's CONFIG_PREEMPT=y and CONFIG_PREEMPT_DYNAMIC=y are left out (the other
# configurations' fragments, and so their cache keys, are unchanged).
models() { if [ "$kconfig" = rt ]; then grep -vxE 'CONFIG_PREEMPT(_DYNAMIC)?=y'; else cat; fi; }
case "$kver" in
	6.12) fragment() { cat "${fragments[@]}" | models; } ;;
	7.3) fragment() { sed 's/^CONFIG_PROC_SYSCTL=y$/CONFIG_SYSCTL=y/; s/^CONFIG_CFI_CLANG=y$/CONFIG_CFI=y/' "${fragments[@]}" | models; } ;;
	*) echo "kernel.sh: unknown KVER '$kver' (6.12 or 7.3)" >&2; exit 2 ;;
esac

RRP_LOG=kernel
. "$here/scripts/lib.sh"
cache=$RRP_CACHE
export PATH="/usr/lib/llvm-19/bin:$HOME/.cargo/bin:$PATH"
BINDGEN=$(command -v bindgen || echo bindgen)
KMAKE=(make ARCH="$arch" LLVM=1 RUSTC=/usr/bin/rustc HOSTRUSTC=/usr/bin/rustc "BINDGEN=$BINDGEN")

# 6.12: the installed linux-source-6.12's version (`missing` if it is not); 7.3: that of the tarball,
# fetched on first use (if that fails, the paths say `missing` and a build stops).
pkgver=$("$here/scripts/linux-source.sh" version "$kver") || { [ "$cmd" != build ] || exit 1; pkgver=missing; }
key=$( { echo "$pkgver"; fragment; /usr/bin/rustc --version 2>/dev/null; } | rrp_key)
tree="$cache/linux-${pkgver%%-*}-$kconfig-$key"

case "$cmd" in
	kdir) echo "$tree"; exit 0 ;;
	kimage) echo "$tree/$image"; exit 0 ;;
	build) ;;
	*) echo "kernel.sh: unknown command '$cmd' (kdir, kimage, build)" >&2; exit 2 ;;
esac

if [ -f "$tree/.rrp-built" ] && [ -f "$tree/$image" ]; then
	log "cached: $tree"
	exit 0
fi
tarball=$("$here/scripts/linux-source.sh" tarball "$kver")
[ -f "$tarball" ] || { log "error: $tarball missing (run scripts/setup.sh)"; exit 1; }

if [ ! -f "$tree/Makefile" ]; then
	log "extracting $tarball into $tree"
	mkdir -p "$tree.tmp"
	tar -xf "$tarball" -C "$tree.tmp" --strip-components=1
	rm -rf "$tree"
	mv "$tree.tmp" "$tree"
fi
cd "$tree"

avail=$("${KMAKE[@]}" rustavailable 2>&1) || true
case "$avail" in
	*"Rust is available"*) ;;
	*) log "error: 'make rustavailable' failed:"; printf '%s\n' "$avail" >&2; exit 1 ;;
esac

log "configuring: tinyconfig + ${fragments[*]##*/}"
"${KMAKE[@]}" -s tinyconfig
fragment > .rrp-fragment
scripts/kconfig/merge_config.sh -m -O . .config .rrp-fragment >/dev/null
"${KMAKE[@]}" -s olddefconfig

# Every option of the fragment must have survived olddefconfig: name the ones that did not.
dropped=()
while IFS= read -r line; do
	case "$line" in
		CONFIG_*=*)
			grep -qxF "$line" .config || dropped+=("$line (got: $(grep -E "^(# )?${line%%=*}[= ]" .config || echo absent))")
			;;
		"# CONFIG_"*" is not set")
			opt=${line#\# }; opt=${opt%% *}
			grep -qE "^$opt=" .config && dropped+=("$line (got: $(grep -E "^$opt=" .config))")
			;;
	esac
done < .rrp-fragment
if [ "${#dropped[@]}" -gt 0 ]; then
	log "error: these fragment options did not survive olddefconfig (a dependency is missing):"
	printf 'kernel:   %s\n' "${dropped[@]}" >&2
	exit 1
fi

log "building $target and modules_prepare for $arch with LLVM=1, $(/usr/bin/rustc --version) (~15 min on 2 cores)"
start=$SECONDS
"${KMAKE[@]}" -j"$(nproc)" "$target" modules_prepare >"$tree/.rrp-build.log" 2>&1 ||
	{ tail -40 "$tree/.rrp-build.log" >&2; log "error: kernel build failed (log: $tree/.rrp-build.log)"; exit 1; }
# Modules built in-tree (none with tinyconfig, but keep Module.symvers current for M= builds).
"${KMAKE[@]}" -j"$(nproc)" modules >>"$tree/.rrp-build.log" 2>&1 ||
	{ tail -40 "$tree/.rrp-build.log" >&2; log "error: modules build failed"; exit 1; }
touch .rrp-built
log "built in $((SECONDS - start)) s: $tree/$image"
