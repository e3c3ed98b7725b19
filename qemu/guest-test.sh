#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The boot test, run inside the guest by qemu/boot.sh: loads the module, checks what it shows,
# unloads it, and ends with `N passed, N failed`.  Usage: guest-test.sh REPO OUTDIR
set -u
. "$(dirname "$0")/guest-lib.sh"

echo "guest: $(uname -r), $(nproc) CPUs online: $(cat /sys/devices/system/cpu/online)"
mount_debugfs

# --- Load, files, unload --------------------------------------------------------------------------
check "insmod resched_probe.ko" insmod "$ko"
check "module listed in /proc/modules" grep -q '^resched_probe ' /proc/modules
check "$D is a directory" test -d "$D"
check "cpus equals /sys/devices/system/cpu/online" \
	test "$(cat $D/cpus 2>&1)" = "$(cat /sys/devices/system/cpu/online)"
check "cpus read one byte at a time equals one large read" \
	test "$(dd if=$D/cpus bs=1 2>/dev/null | od -c)" = "$(dd if=$D/cpus bs=64k 2>/dev/null | od -c)"
check "cpus is root-only read-only (mode 400)" test "$(stat -c %a $D/cpus)" = 400
check "writing cpus fails" sh -c "! echo 1 > $D/cpus 2>/dev/null"
check "load logged one line" test "$(dmesg | grep -c 'resched: loaded')" = 1
check "rmmod resched_probe" rmmod resched_probe
check "unload removed $D" test ! -e "$D"
check "module gone from /proc/modules" sh -c "! grep -q '^resched_probe ' /proc/modules"

# --- 20 load/unload cycles ------------------------------------------------------------------------
cycles_ok=0
for i in $(seq 1 20); do
	insmod "$ko" || break
	[ "$(cat $D/cpus)" = "$(cat /sys/devices/system/cpu/online)" ] || break
	rmmod resched_probe || break
	[ ! -e "$D" ] || break
	cycles_ok=$i
done
check "20 load/unload cycles ($cycles_ok completed)" test "$cycles_ok" = 20

# --- IPI counting (qemu/guest_ipi.py), preempt notifiers (qemu/guest_sched.py) -------------------------
# Python checks add their own counts; a crash of the script counts as a failure.
run_py() {
	local name=$1
	shift
	rm -f "$out/$name.counts"
	/usr/bin/python3 "$repo/qemu/guest_$name.py" "$repo" "$out" $((passed + failed + 1)) "$@"
	if [ -f "$out/$name.counts" ]; then
		read -r p f < "$out/$name.counts"
		passed=$((passed + p))
		failed=$((failed + f))
	else
		not_ok "guest_$name.py ran to the end"
	fi
}
for part in ipi sched stacks; do
	if insmod "$ko"; then
		ok "insmod for the $part checks"
		run_py "$part"
		grep -q '^resched_probe ' /proc/modules && rmmod resched_probe
	else
		not_ok "insmod for the $part checks"
	fi
done

check "kernel log has no WARNING, BUG, Oops or Call Trace" dmesg_clean
finish
