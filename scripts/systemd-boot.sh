#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The module loaded at boot, as on a user's machine (`make check-systemd`, and the last part of
# `make check` on x86 unless CHECK_SYSTEMD=0): the kernel (SYSTEMD_KVER, 7.3 unless set) built for
# systemd as init (KCONFIG=systemd, qemu/systemd.config; its own release, 7.3.4-systemd), DKMS builds
# and installs the module for it (scripts/dkms.sh install: /lib/modules/<release> laid out as its
# package would), `make install-boot` puts /etc/modules-load.d/resched_probe.conf in place, and the
# kernel boots with systemd as init
# (qemu/boot.sh systemd; the guest's root is this machine's). The guest part, qemu/guest/systemd.py,
# checks what systemd did.
#
# The snippet is removed from this machine's /etc afterwards unless it was there before; the DKMS
# install stays, as scripts/dkms.sh test leaves the default kernels'. Prints the host's checks (`ok N`),
# the guest's log, and one `N passed, N failed` over both.
set -uo pipefail
# One compound command, read whole before it runs: the script changes this machine (/.dockerenv, the
# snippet) and puts it back at its end, and bash reads a plain script as it goes, so an edit made while
# it runs (15 min) would run from a wrong offset.
{
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RRP_LOG=systemd
. "$repo/scripts/lib.sh"
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
# 7.3 by default: 6.12's 9p client overflowed the kernel stack under systemd (netfs_retry_reads calling
# itself for a read it kept retrying) before anything was loaded; SYSTEMD_KVER=6.12 tries it again
# (not KVER: the Makefile exports its default, 6.12).
kver=${SYSTEMD_KVER:-7.3}
mk() { make -C "$repo" --no-print-directory KVER="$kver" KCONFIG=systemd "$@"; }

n=0 bad=0
check() { # name, status (0: ok)
	n=$((n + 1))
	if [ "$2" = 0 ]; then echo "ok $n - $1"; else echo "not ok $n - $1"; bad=$((bad + 1)); fi
}
finish() {
	local p=0 f=0 line
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$guest_log" 2>/dev/null | tail -1)
	if [ -n "$line" ]; then read -r p _ f _ <<<"$line"; elif [ "$1" = booted ]; then f=1; fi
	echo "$((n - bad + p)) passed, $((bad + f)) failed"
	[ "$((bad + f))" = 0 ]
}
guest_log=/dev/null

mk kernel modules "$repo/tools/rrp-load" >&2
check "the kernel for systemd (KCONFIG=systemd) and the module built for it" $?
[ "$bad" = 0 ] || { finish none; exit; }
kdir=$(mk -s kdir)
rel=$(cat "$kdir/include/config/kernel.release")

out=$("$repo/scripts/dkms.sh" install "$kdir" 2>&1)
rc=$?
[ "$rc" = 0 ] && grep -q . <<<"$(find "/lib/modules/$rel" -path '*dkms*' -name 'resched_probe.ko*')"
check "dkms install for $rel (scripts/dkms.sh install $kdir)" $?
[ "$rc" = 0 ] || echo "$out" | tail -20 | sed 's/^/#   /'

snippet=/etc/modules-load.d/resched_probe.conf
had_snippet=$([ -e "$snippet" ] && echo 1 || echo 0)
# The guest's root is this machine's. Where this machine is a Docker container, its /.dockerenv makes
# the guest's systemd generators take the guest for a container (systemd's detect_container() checks
# that file unless $container is set for PID 1, and an empty $container counts as a container in every
# process but PID 1): systemd-getty-generator then starts console-getty.service instead of
# serial-getty@ttyS0.service, where virtme-ng runs the guest part, and the guest sits at a login
# prompt. So the file is moved aside for the boot and put back after (and on any exit of this script).
dockerenv=/.dockerenv aside=/.dockerenv.rrp-systemd-boot
# (One a killed run left aside goes back first.)
[ -e "$aside" ] && [ ! -e "$dockerenv" ] && $SUDO mv "$aside" "$dockerenv"
restore() {
	[ "$had_snippet" = 1 ] || $SUDO rm -f "$snippet"
	[ -e "$aside" ] && $SUDO mv "$aside" "$dockerenv"
}
trap restore EXIT
trap 'exit 130' INT TERM
$SUDO make -C "$repo" --no-print-directory install-boot >/dev/null
cmp -s "$repo/dkms/resched_probe.conf" "$snippet"
check "make install-boot: $snippet" $?

guest_log=$(mktemp)
[ -e "$dockerenv" ] && $SUDO mv "$dockerenv" "$aside"
KVER=$kver KCONFIG=systemd RRP_KO=$(mk -s ko) "$repo/qemu/boot.sh" systemd >"$guest_log" 2>&1
echo "# the boot (qemu/boot.sh systemd) exited $?"
sed 's/^/  /' "$guest_log"
finish booted
exit
}
