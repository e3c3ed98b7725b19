#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The Linux source tarball each kernel is built from (scripts/kernel.sh, KVER). 6.12: Debian's
# linux-source-6.12, installed by scripts/setup.sh. 7.3: Debian's linux-source-7.3 (7.3.4 or newer) from
# trixie-backports, downloaded by name with `apt-get download` and unpacked with `dpkg-deb -x` into the cache,
# never installed: apt runs with a sources file, package lists and archive cache of its own under the cache,
# so the system's apt set-up is neither read for sources nor changed. The suite's signature is checked with
# debian-archive-keyring's keyring (trixie-backports is signed by the 12/bookworm and 13/trixie automatic
# signing keys; bookworm's keyring has both), and any apt warning or error stops the fetch. Only the tarball
# is kept, in a folder named by the package version.
#
#   scripts/linux-source.sh tarball VER   print the tarball path (VER: 6.12 or 7.3; 7.3: fetched first unless
#                                         that is already done)
#   scripts/linux-source.sh version VER   print the linux-source-VER package version (7.3: likewise fetched first)
#
# The first 7.3 fetch records its version (linux-source-7.3.version in the cache); later calls only print.
# Remove that file to move to a newer upload: the next call fetches it beside the old one.
set -euo pipefail

cmd=${1:-}
ver=${2:-${KVER:-6.12}}
RRP_LOG=linux-source
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cache=$RRP_CACHE
die() { printf 'linux-source: error: %s\n' "$*" >&2; exit 1; }

case "$cmd" in
	tarball | version) ;;
	*) echo "linux-source.sh: unknown command '$cmd' (tarball, version)" >&2; exit 2 ;;
esac
case "$ver" in
	6.12)
		case "$cmd" in
			tarball) echo /usr/src/linux-source-6.12.tar.xz ;;
			version) echo "$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || echo missing)" ;;
		esac
		exit 0
		;;
	7.3) ;;
	*) echo "linux-source.sh: unknown kernel version '$ver' (6.12 or 7.3)" >&2; exit 2 ;;
esac

PKG=linux-source-$ver
MIN=7.3.4
SUITE=trixie-backports
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
record=$cache/$PKG.version
dir_of() { echo "$cache/${PKG}_$1"; }
tarball_of() { echo "$(dir_of "$1")/$PKG.tar.xz"; }
done_or_fetch() {
	local v
	[ -f "$record" ] && v=$(cat "$record") && [ -f "$(tarball_of "$v")" ] || return 1
	case "$cmd" in
		tarball) tarball_of "$v" ;;
		version) echo "$v" ;;
	esac
	exit 0
}

done_or_fetch || true
mkdir -p "$cache"
# One fetch at a time (make evaluates `kernel.sh kdir` in every sub-make); the one that waited finds it done.
exec 9>"$cache/.$PKG.lock"
flock -n 9 || { log "waiting for another fetch of $PKG"; flock 9; }
done_or_fetch || true

# apt with its own sources, lists and archive cache, and no pins (empty.d: no further sources or preferences).
aptdir=$cache/apt-$SUITE
mkdir -p "$aptdir/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/empty.d"
printf 'deb [signed-by=%s] http://deb.debian.org/debian %s main\n' "$KEYRING" "$SUITE" >"$aptdir/sources.list"
APT=(-o Dir::Etc::SourceList="$aptdir/sources.list" -o Dir::Etc::SourceParts="$aptdir/empty.d"
	-o Dir::Etc::Preferences="$aptdir/preferences" -o Dir::Etc::PreferencesParts="$aptdir/empty.d"
	-o Dir::State::Lists="$aptdir/lists" -o Dir::Cache="$aptdir/cache" -o Acquire::Languages=none)
# As root, apt warns that its _apt user cannot write into the download folder: not a problem here.
apt_ok() { ! grep -vE '^W: Download is performed unsandboxed' "$1" | grep -E '^(W|E|Err):' >/dev/null; }

log "reading $SUITE's package list (apt state in $aptdir)"
rc=0
apt-get "${APT[@]}" -q update >"$aptdir/update.log" 2>&1 || rc=$?
if [ "$rc" != 0 ] || ! apt_ok "$aptdir/update.log"; then
	grep -E '^(W|E|Err):' "$aptdir/update.log" >&2 || tail -5 "$aptdir/update.log" >&2
	die "apt-get update of $SUITE failed (a signature apt cannot check against $KEYRING stops here too)"
fi
v=$(apt-cache "${APT[@]}" policy "$PKG" | awk '/Candidate:/ { print $2 }')
case "$v" in
	"" | "(none)") die "$SUITE has no $PKG" ;;
esac
dpkg --compare-versions "$v" ge "$MIN" || die "$SUITE has $PKG $v, older than $MIN"

dir=$(dir_of "$v")
tarball=$(tarball_of "$v")
if [ ! -f "$tarball" ]; then
	log "downloading $PKG=$v from $SUITE (~170 MB) and unpacking it into $dir"
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp/deb" "$dir.tmp/root"
	rc=0
	(cd "$dir.tmp/deb" && apt-get "${APT[@]}" -q download "$PKG=$v") >"$dir.tmp/download.log" 2>&1 || rc=$?
	if [ "$rc" != 0 ] || ! apt_ok "$dir.tmp/download.log"; then
		grep -E '^(W|E|Err):' "$dir.tmp/download.log" >&2 || tail -5 "$dir.tmp/download.log" >&2
		die "apt-get download $PKG=$v failed"
	fi
	deb=$(ls "$dir.tmp/deb/${PKG}_"*.deb 2>/dev/null) || die "$PKG was not downloaded"
	dpkg-deb -x "$deb" "$dir.tmp/root"
	[ -f "$dir.tmp/root/usr/src/$PKG.tar.xz" ] || die "$deb has no usr/src/$PKG.tar.xz"
	mkdir -p "$dir"
	mv "$dir.tmp/root/usr/src/$PKG.tar.xz" "$tarball"
	rm -rf "$dir.tmp"
	log "got $tarball ($(du -h "$tarball" | cut -f1))"
fi
echo "$v" >"$record.tmp"
mv "$record.tmp" "$record"
done_or_fetch || die "$tarball is not there after the fetch"
