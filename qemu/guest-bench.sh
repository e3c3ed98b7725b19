#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# `make bench`, run inside the guest by qemu/boot.sh: qemu/guest_bench.py.  Usage: guest-bench.sh REPO OUTDIR
set -u
. "$(dirname "$0")/guest-lib.sh"
mount_debugfs
/usr/bin/python3 "$repo/qemu/guest_bench.py" "$repo" "$out" 1
if [ -f "$out/bench.counts" ]; then
	read -r passed failed < "$out/bench.counts"
else
	not_ok "guest_bench.py ran to the end"
fi
check "kernel log has no WARNING, BUG, Oops or Call Trace" dmesg_clean
finish
