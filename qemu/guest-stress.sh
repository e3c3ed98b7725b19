#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make stress`, run inside the guest by qemu/boot.sh: qemu/guest_stress.py.  Usage: guest-stress.sh REPO OUTDIR
set -u
. "$(dirname "$0")/guest-lib.sh"
echo "guest: $(uname -r), $(nproc) CPUs online: $(cat /sys/devices/system/cpu/online)"
grep -qE 'kasan|KASAN' /proc/cmdline /dev/null; dmesg | grep -m1 -E 'KernelAddressSanitizer initialized' || echo "guest: no KASAN in this kernel"
mount_debugfs
/usr/bin/python3 "$repo/qemu/guest_stress.py" "$repo" "$out" 1 "$ko"
if [ -f "$out/stress.counts" ]; then
	read -r passed failed < "$out/stress.counts"
else
	not_ok "guest_stress.py ran to the end"
fi
finish
