#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The QEMU the x86 scale boot runs: more than 255 x86 CPUs need x2APIC, which QEMU's TCG emulates only
# from 8.1 on (bookworm has 7.2). This takes qemu-system-x86 10 and its firmware from Debian's
# bookworm-backports, downloads them by name and unpacks them with dpkg-deb into the cache, beside the
# system's QEMU: the other boots keep bookworm's 7.2, and none of these is installed (the libraries it links
# are bookworm's; any the host lacks are installed from there). Cached outside the repo, keyed by the versions.
#
#   scripts/qemu-x2apic.sh path    print the qemu-system-x86_64 path (whether or not it is there yet)
#   scripts/qemu-x2apic.sh data    print its firmware folder (QEMU's -L)
#   scripts/qemu-x2apic.sh build   add bookworm-backports to apt's sources (pin 100: nothing upgrades from
#                                  it), download and unpack unless that is already done
set -euo pipefail

cmd=${1:-build}
RRP_LOG=qemu-x2apic
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cache=$RRP_CACHE
SUITE=bookworm-backports
# qemu-system-x86's binary, the ROMs and keymaps of qemu-system-data, and the SeaBIOS it was built for.
PKGS=(qemu-system-x86 qemu-system-data seabios)
SOURCES=/etc/apt/sources.list.d/rrp-bookworm-backports.sources

versions() {
	local p v
	for p in "${PKGS[@]}"; do
		v=$(apt-cache madison "$p" 2>/dev/null |
			awk -F' *[|] *' -v s=" $SUITE/" 'index($3, s) && $3 ~ / amd64 / { print $2; exit }')
		echo "$p=${v:-missing}"
	done
}
unknown() {
	case "$cmd" in
		path) echo "$cache/qemu-x2apic-unknown/usr/bin/qemu-system-x86_64"; exit 0 ;;
		data) echo "$cache/qemu-x2apic-unknown/usr/share/qemu"; exit 0 ;;
	esac
}

list=$(versions)
if grep -q '=missing$' <<<"$list"; then
	unknown
	if ! grep -rqs "$SUITE" /etc/apt/sources.list /etc/apt/sources.list.d/; then
		log "adding $SUITE to apt's sources ($SOURCES)"
		printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: %s\n' \
			"$SUITE" /usr/share/keyrings/debian-archive-keyring.gpg | $SUDO tee "$SOURCES" >/dev/null
	fi
	$SUDO apt-get update -qq
	list=$(versions)
fi
key=$(rrp_key <<<"$list")
dir="$cache/qemu-x2apic-$key"
bin="$dir/usr/bin/qemu-system-x86_64"

case "$cmd" in
	path) echo "$bin"; exit 0 ;;
	data) echo "$dir/usr/share/qemu"; exit 0 ;;
	build) ;;
	*) echo "qemu-x2apic.sh: unknown command '$cmd' (path, data, build)" >&2; exit 2 ;;
esac
if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
	log "cached: $bin"
	exit 0
fi
if grep -q '=missing$' <<<"$list"; then
	log "error: no $SUITE candidate for: $(grep '=missing$' <<<"$list" | tr '\n' ' ')"
	exit 1
fi

log "downloading from $SUITE: $(tr '\n' ' ' <<<"$list")"
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp/debs" "$dir.tmp/root"
root="$dir.tmp/root"
# shellcheck disable=SC2086 # one `name=version` per word
rrp_download "$dir.tmp/debs" $list
rrp_unpack "$dir.tmp/debs" "$root" "${PKGS[@]}"
# QEMU looks for the BIOS in its data folder; the system's has links to SeaBIOS there, this one gets its own.
for f in "$root/usr/share/seabios/"*.bin; do
	[ -e "$root/usr/share/qemu/${f##*/}" ] || ln -s "../seabios/${f##*/}" "$root/usr/share/qemu/${f##*/}"
done
# The libraries it links are bookworm's (a backport is built against them); install the ones the host lacks.
missing=$(ldd "$root/usr/bin/qemu-system-x86_64" | awk '/not found/ { print $1 }')
if [ -n "$missing" ]; then
	libs=$(apt-cache depends "qemu-system-x86=$(sed -n 's/^qemu-system-x86=//p' <<<"$list")" |
		awk '$1 == "Depends:" && $2 ~ /^lib/ { print $2 }' | sort -u)
	log "libraries the host lacks: $(tr '\n' ' ' <<<"$missing"); installing $(tr '\n' ' ' <<<"$libs")"
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $libs >/dev/null
	still=$(ldd "$root/usr/bin/qemu-system-x86_64" | awk '/not found/ { print $1 }')
	[ -z "$still" ] || { log "error: still missing: $(tr '\n' ' ' <<<"$still")"; exit 1; }
fi
"$root/usr/bin/qemu-system-x86_64" --version | head -1 >&2
rm -rf "$dir"
mv "$root" "$dir"
rm -rf "$dir.tmp"
log "built: $bin"
