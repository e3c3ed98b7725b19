# SPDX-License-Identifier: GPL-2.0
# Shared by the guest scripts: paths, check bookkeeping, kernel log checks. Sourced, not run.

repo=$1
out=$2
ko="${RRP_KO:-$repo/resched_probe.ko}"
D=/sys/kernel/debug/resched
passed=0
failed=0

exec > >(tee -a "$out/test.log") 2>&1

ok() { passed=$((passed + 1)); echo "ok $((passed + failed)) - $*"; }
not_ok() { failed=$((failed + 1)); echo "not ok $((passed + failed)) - $*"; }
# check DESCRIPTION COMMAND...: one guest check, passed when COMMAND succeeds.
check() {
	local desc=$1
	shift
	if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

# The kernel log is clean: no WARNING, BUG, Oops or Call Trace since boot.
dmesg_clean() {
	! dmesg | grep -E 'WARNING|BUG|Oops|Call Trace' >&2
}

mount_debugfs() {
	mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
	mountpoint -q /sys/kernel/tracing || mount -t tracefs none /sys/kernel/tracing 2>/dev/null || true
}

# Prints the closing line, leaves the verdict and the kernel log for the host, and powers off.
finish() {
	echo "$passed passed, $failed failed"
	dmesg > "$out/dmesg.log"
	echo "$passed $failed" > "$out/result"
	sync
}
