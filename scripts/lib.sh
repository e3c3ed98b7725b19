# SPDX-License-Identifier: GPL-2.0
#
# What the scripts that build or fetch into the cache share (sourced, not run): the cache folder, sudo
# when not root, the cache key, and Debian packages downloaded by name and unpacked (never installed).
# Each script sets RRP_LOG (its log prefix) before sourcing.

# The cache, outside the repo: kernels, the 7.3 source, QEMU 10, the arm64 root, guest logs.
RRP_CACHE=${RESCHED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rust-resched-probe}
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

log() { printf '%s: %s\n' "${RRP_LOG:-rrp}" "$*" >&2; }

# The cache key of what is read from standard input: 12 hex digits of its SHA-256.
rrp_key() { sha256sum | cut -c1-12; }

# rrp_download FOLDER PACKAGE...: `apt-get download` into FOLDER (as root apt warns that its _apt user
# cannot write there: not a problem, left out); then each PACKAGE (a name, `name:arch` or `name=version`)
# must have a .deb there.
rrp_download() {
	local dir=$1 p name
	shift
	(cd "$dir" && apt-get download -q "$@" 2>&1 | grep -v '^W: Download is performed unsandboxed' >&2) || true
	for p in "$@"; do
		name=${p%%[:=]*}
		ls "$dir/${name}_"*.deb >/dev/null 2>&1 || { log "error: $p was not downloaded"; return 1; }
	done
}

# rrp_unpack FOLDER DEST PACKAGE...: `dpkg-deb -x` the downloaded .deb of each PACKAGE (a name) into DEST.
rrp_unpack() {
	local dir=$1 dest=$2 p
	shift 2
	for p in "$@"; do
		dpkg-deb -x "$dir/${p}_"*.deb "$dest"
	done
}
