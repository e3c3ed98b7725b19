#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The module through DKMS, as out-of-tree modules reach machines (dkms/dkms.conf, dkms/build.sh).
#
#   scripts/dkms.sh add           the module's sources into /usr/src/resched-probe-VERSION and `dkms add`
#                                 (earlier versions of resched-probe removed first, for every kernel)
#   scripts/dkms.sh install KDIR  add, then `dkms install` for the kernel built in KDIR (its release from
#                                 KDIR/include/config/kernel.release), which runs depmod; /lib/modules/<release>
#                                 laid out first as the kernel's package would have it
#   scripts/dkms.sh test KDIR     the checks of make check (one `ok`/`not ok` line each, then `N passed,
#                                 N failed`): a kernel without CONFIG_RUST refused before any build, one
#                                 without the Rust metadata refused with what is missing, the build and
#                                 install for KDIR's kernel, depmod's entry, `make install` into extra/,
#                                 `make install-tool` (completions, man pages).
#                                 It leaves the module installed for the boot test's `dkms` part
#                                 (modprobe, and modules-load.d as at boot).
#   scripts/dkms.sh version       the version DKMS knows this tree by
#
# The version: 0.<commits>.g<hash> of the checked-out commit (DKMS keeps one folder per version).
set -uo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RRP_LOG=dkms
. "$repo/scripts/lib.sh"
name=resched-probe
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

version() {
	echo "0.$(git -C "$repo" rev-list --count HEAD).g$(git -C "$repo" rev-parse --short=10 HEAD)"
}

ensure_dkms() {
	command -v dkms >/dev/null && return
	log "installing dkms"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends dkms >/dev/null
}

add() {
	ensure_dkms
	local v src old
	v=$(version)
	src=/usr/src/$name-$v
	for old in $(dkms status "$name" 2>/dev/null | sed -n "s|^$name/\([^,:]*\).*|\1|p" | sort -u); do
		[ "$old" = "$v" ] && continue
		$SUDO dkms remove "$name/$old" --all >/dev/null 2>&1 || true
		$SUDO rm -rf "/usr/src/$name-$old"
	done
	# Here-strings, not pipes, into `grep -q` in this file: under pipefail a writer that outlives grep's
	# first match (dkms status lists one line per kernel) dies of SIGPIPE and fails the pipe.
	if ! grep -q . <<<"$(dkms status "$name/$v" 2>/dev/null)"; then
		$SUDO rm -rf "$src"
		$SUDO mkdir -p "$src"
		# What the module builds from (the Makefile's MOD_SRCS), dkms/build.sh, and dkms.conf at the top.
		(cd "$repo" && $SUDO cp -p --parents $(make -s --no-print-directory mod-srcs) dkms/build.sh "$src/")
		sed "s/@VERSION@/$v/" "$repo/dkms/dkms.conf" | $SUDO tee "$src/dkms.conf" >/dev/null
		$SUDO dkms add "$name/$v" >/dev/null || return 1
	fi
	echo "$v"
}

release() { cat "$1/include/config/kernel.release"; }

# The kernel as its package or `make modules_install` would leave it: /lib/modules/<release> with its
# build link and the lists of built-in modules (the project's kernels are booted from their tree, never
# installed; DKMS installs only for a kernel that is). The boot tests' guests share this root.
layout() {
	local kdir=$1 rel
	rel=$(release "$kdir") || return 1
	$SUDO mkdir -p "/lib/modules/$rel"
	$SUDO ln -sfn "$kdir" "/lib/modules/$rel/build"
	$SUDO cp "$kdir/modules.builtin" "$kdir/modules.builtin.modinfo" "$kdir/modules.order" "/lib/modules/$rel/"
}

install() {
	local kdir=$1 v
	v=$(add) || return 1
	layout "$kdir" || return 1
	$SUDO dkms install "$name/$v" -k "$(release "$kdir")" --kernelsourcedir "$kdir"
}

n=0 bad=0
check() { # name, status (0: ok)
	n=$((n + 1))
	if [ "$2" = 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; bad=$((bad + 1)); fi
}

# A configured tree with the given .config and nothing else: what DKMS sees of a kernel without Rust,
# or of a header package without the Rust metadata.
fake_tree() {
	local dir=$1 rel=$2
	mkdir -p "$dir/include/config"
	echo "$rel" >"$dir/include/config/kernel.release"
	shift 2
	printf '%s\n' "$@" >"$dir/.config"
}

test_all() {
	local kdir=$1 v rel tmp out rc ko makelog
	rel=$(release "$kdir") || { echo "not ok 1 - a kernel release in $kdir"; echo "0 passed, 1 failed"; return 1; }
	tmp=$(mktemp -d)
	v=$(add)
	grep -q . <<<"$(dkms status "$name/$v" 2>/dev/null)"
	check "dkms add: $name/$v registered from /usr/src/$name-$v" $?

	fake_tree "$tmp/norust" 0.0.0-norust CONFIG_KPROBES=y CONFIG_DEBUG_FS=y
	out=$($SUDO dkms build "$name/$v" -k 0.0.0-norust --kernelsourcedir "$tmp/norust" 2>&1)
	rc=$?
	[ "$rc" = 77 ] && grep -q BUILD_EXCLUSIVE <<<"$out"
	check "a kernel without CONFIG_RUST is refused before any build (dkms exit $rc, BUILD_EXCLUSIVE)" $?
	[ "$rc" = 77 ] || echo "$out" | tail -5 | sed 's/^/#   /'

	fake_tree "$tmp/nometa" 0.0.0-nometa CONFIG_RUST=y CONFIG_KPROBES=y CONFIG_KRETPROBES=y \
		CONFIG_DEBUG_FS=y CONFIG_MODULE_UNLOAD=y CONFIG_PREEMPT_NOTIFIERS=y
	out=$($SUDO dkms build "$name/$v" -k 0.0.0-nometa --kernelsourcedir "$tmp/nometa" 2>&1)
	rc=$?
	# DKMS names the failed build's make.log, which holds dkms/build.sh's message.
	makelog=$(sed -n 's/.*Consult \(\S*make.log\).*/\1/p' <<<"$out" | head -1)
	[ "$rc" != 0 ] && grep -q 'missing rust/libkernel.rmeta' "${makelog:-/nonexistent}"
	check "a Rust kernel's tree without the Rust metadata is refused, its make.log saying what is missing (dkms exit $rc)" $?
	grep -h 'resched_probe: cannot build' "${makelog:-/nonexistent}" | sed 's/^/#   /'

	layout "$kdir"
	out=$($SUDO dkms install "$name/$v" -k "$rel" --kernelsourcedir "$kdir" 2>&1)
	rc=$?
	ko=$(find "/lib/modules/$rel" -name 'resched_probe.ko*' -path '*dkms*' 2>/dev/null | head -1)
	[ "$rc" = 0 ] && [ -n "$ko" ]
	check "dkms install for $rel, built against $kdir: ${ko:-nothing installed}" $?
	[ "$rc" = 0 ] || echo "$out" | tail -20 | sed 's/^/#   /'
	grep -q installed <<<"$(dkms status "$name/$v" -k "$rel" 2>/dev/null)"
	check "dkms status: $name/$v installed for $rel" $?
	[ -n "$ko" ] && grep -q "^$rel " <<<"$(modinfo -F vermagic "$ko")"
	check "modinfo: the installed module's vermagic is $rel's" $?
	grep -q 'resched_probe.ko' "/lib/modules/$rel/modules.dep" 2>/dev/null
	check "depmod ran: modules.dep lists it for modprobe" $?

	# make install: modules_install into extra/ (INSTALL_MOD_PATH: a staging root here).
	out=$(make -C "$repo" --no-print-directory KDIR="$kdir" KVER="$(kver_of "$rel")" install \
		INSTALL_MOD_PATH="$tmp/root" 2>&1)
	rc=$?
	[ "$rc" = 0 ] && [ -f "$tmp/root/lib/modules/$rel/extra/resched_probe.ko" ] &&
		grep -q '^extra/resched_probe.ko' "$tmp/root/lib/modules/$rel/modules.dep"
	check "make install: extra/resched_probe.ko under INSTALL_MOD_PATH, in depmod's modules.dep" $?
	[ "$rc" = 0 ] || echo "$out" | tail -20 | sed 's/^/#   /'
	# make install-tool: the tool, its completions and man pages (DESTDIR: a staging root here).
	out=$(make -C "$repo" --no-print-directory install-tool DESTDIR="$tmp/tool" PREFIX=/usr 2>&1)
	rc=$?
	[ "$rc" = 0 ] && [ -x "$tmp/tool/usr/bin/resched" ] &&
		grep -q stacks "$tmp/tool/usr/share/bash-completion/completions/resched" &&
		[ -s "$tmp/tool/usr/share/zsh/site-functions/_resched" ] &&
		[ -s "$tmp/tool/usr/share/fish/vendor_completions.d/resched.fish" ] &&
		grep -q matrix <<<"$(MANWIDTH=80 man -l "$tmp/tool/usr/share/man/man1/resched-plot.1" 2>/dev/null)"
	check "make install-tool: the tool, bash, zsh and fish completions, man pages that man renders" $?
	[ "$rc" = 0 ] || echo "$out" | tail -20 | sed 's/^/#   /'
	rm -rf "$tmp"
	echo "$((n - bad)) passed, $bad failed"
	[ "$bad" = 0 ]
}

# The KVER (6.12, 7.3) of a kernel release, for make's choice of build folder.
kver_of() { echo "$1" | cut -d. -f1-2; }

case "${1:-}" in
	add) add ;;
	install) install "${2:?usage: dkms.sh install KDIR}" ;;
	test) test_all "${2:?usage: dkms.sh test KDIR}" ;;
	version) version ;;
	*) echo "usage: scripts/dkms.sh add | install KDIR | test KDIR | version" >&2; exit 2 ;;
esac
