#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The main job, run inside the guest by qemu/boot.sh: load the module, show every file, unload.
# Usage: guest-run.sh REPO OUTDIR
set -u
. "$(dirname "$0")/guest-lib.sh"

echo "guest: $(uname -r), $(nproc) CPUs online: $(cat /sys/devices/system/cpu/online)"
mount_debugfs
check "insmod resched_probe.ko" insmod "$ko"
for f in "$D"/*; do
	[ -r "$f" ] && [ "$(stat -c %a "$f")" != 200 ] || continue
	echo "==> $f <=="
	cat "$f"
done
check "rmmod resched_probe" rmmod resched_probe
check "kernel log has no WARNING, BUG, Oops or Call Trace" dmesg_clean
finish
