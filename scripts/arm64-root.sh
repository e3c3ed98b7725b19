#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The arm64 guest's root file system, as an initramfs: busybox and Python 3.11 from Debian's arm64
# packages, downloaded by name and unpacked with dpkg-deb (nothing arm64 runs on the host), plus
# qemu/arm64-init; and a sysroot (Debian's arm64 libc and libgcc development files) in which clang
# cross-builds the load generator (tools/rrp-load-arm64, static). Cached outside the repo, keyed by the
# package versions and the init script.
#
#   scripts/arm64-root.sh path      print the initramfs path (whether or not it is built yet)
#   scripts/arm64-root.sh sysroot   print the sysroot path
#   scripts/arm64-root.sh build     download, unpack and pack them unless that is already done
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cmd=${1:-build}
RRP_LOG=arm64-root
. "$here/scripts/lib.sh"
cache=$RRP_CACHE
# What the guest runs: busybox (sh, mount, insmod, rmmod, dmesg, tee, poweroff) and the guest checks'
# Python with the libraries its standard modules load.
ROOT_PKGS=(busybox-static libc6 python3.11-minimal libpython3.11-minimal libpython3.11-stdlib libexpat1 zlib1g
	libffi8)
SYSROOT_PKGS=(libc6 libc6-dev linux-libc-dev libgcc-12-dev libgcc-s1)
PKGS=("${ROOT_PKGS[@]}" libc6-dev linux-libc-dev libgcc-12-dev libgcc-s1)

versions() {
	local p v
	for p in "${PKGS[@]}"; do
		v=$(apt-cache policy "$p:arm64" 2>/dev/null | awk '/Candidate:/ { print $2 }')
		echo "$p=${v:-missing}"
	done
}

if ! grep -qx arm64 <<<"$(dpkg --print-foreign-architectures)"; then
	case "$cmd" in
		path) echo "$cache/arm64-root-unknown/initramfs.cpio.gz"; exit 0 ;;
		sysroot) echo "$cache/arm64-root-unknown/sysroot"; exit 0 ;;
	esac
	log "adding the arm64 architecture to dpkg (packages are only downloaded, never installed)"
	$SUDO dpkg --add-architecture arm64
	$SUDO apt-get update -qq
fi
list=$(versions)
if grep -q '=missing$' <<<"$list" || grep -q '=(none)$' <<<"$list"; then
	case "$cmd" in
		path) echo "$cache/arm64-root-unknown/initramfs.cpio.gz"; exit 0 ;;
		sysroot) echo "$cache/arm64-root-unknown/sysroot"; exit 0 ;;
	esac
	$SUDO apt-get update -qq
	list=$(versions)
fi
key=$( { echo "$list"; cat "$here/qemu/arm64-init"; } | rrp_key)
dir="$cache/arm64-root-$key"
img="$dir/initramfs.cpio.gz"

case "$cmd" in
	path) echo "$img"; exit 0 ;;
	sysroot) echo "$dir/sysroot"; exit 0 ;;
	build) ;;
	*) echo "arm64-root.sh: unknown command '$cmd' (path, sysroot, build)" >&2; exit 2 ;;
esac
if [ -f "$img" ] && [ -d "$dir/sysroot/usr/lib/gcc" ]; then
	log "cached: $img"
	exit 0
fi
if grep -qE '=(missing|\(none\))$' <<<"$list"; then
	log "error: no arm64 candidate for: $(grep -E '=(missing|\(none\))$' <<<"$list" | tr '\n' ' ')"
	exit 1
fi

log "downloading ${#PKGS[@]} arm64 packages: $(tr '\n' ' ' <<<"$list")"
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp/debs" "$dir.tmp/root"
rrp_download "$dir.tmp/debs" "${PKGS[@]/%/:arm64}"
root="$dir.tmp/root"
rrp_unpack "$dir.tmp/debs" "$root" "${ROOT_PKGS[@]}"
mkdir -p "$dir.tmp/sysroot"
rrp_unpack "$dir.tmp/debs" "$dir.tmp/sysroot" "${SYSROOT_PKGS[@]}"
# What the guest never needs: documentation, locales, Python's test modules.
rm -rf "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/locale" "$root/usr/lib/python3.11/test" \
	"$root/usr/lib/aarch64-linux-gnu/gconv"
ln -sf python3.11 "$root/usr/bin/python3"
mkdir -p "$root/proc" "$root/sys" "$root/dev" "$root/tmp" "$root/run" "$root/sbin" "$root/usr/sbin"
install -m 0755 "$here/qemu/arm64-init" "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$dir.tmp/initramfs.cpio.gz"
rm -rf "$dir"
mkdir -p "$dir"
mv "$dir.tmp/sysroot" "$dir/sysroot"
mv "$dir.tmp/initramfs.cpio.gz" "$img"
rm -rf "$dir.tmp"
log "built: $img ($(du -h "$img" | cut -f1)) and $dir/sysroot"
