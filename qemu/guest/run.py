#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The main job, run inside the guest by qemu/boot.sh: load the module, run a short built-in load, show
# every file with the kernel's own /proc/interrupts deltas beside, unload.  Usage: guest-run.sh REPO OUTDIR
set -u
. "$(dirname "$0")/guest-lib.sh"
load="$repo/tools/rrp-load"

echo "guest: $(uname -r), $(nproc) CPUs online: $(cat /sys/devices/system/cpu/online)"
mount_debugfs
check "insmod resched_probe.ko" insmod "$ko"

# Snapshots are taken with bash's `read` (no new process, so no IPIs of their own): reset, then the
# kernel's counts; after the load, the kernel's counts, then ours. Our window contains the kernel's.
echo 1 > "$D/reset"
echo 1 > "$D/stacks_enable"
IFS= read -r -d '' irq_before < /proc/interrupts
echo "load: busy ping-pong CPU0<->CPU1 (reschedule IPIs), idle ping-pong CPU2<->CPU3 (wakelist"
echo "      wakeups, call-function IPIs), membarrier from CPU0 (call-function IPIs to CPUs 1-3)"
"$load" busypong 0 1 2000 & a=$!
"$load" pingpong 2 3 2000 & b=$!
wait $a $b
"$load" membarrier 300
IFS= read -r -d '' irq_after < /proc/interrupts
declare -A snap
for f in cpus ipi targets matrix probes; do
	IFS= read -r -d '' "snap[$f]" < "$D/$f"
done
echo 0 > "$D/stacks_enable"

for f in cpus ipi targets matrix probes; do
	echo
	echo "==> $D/$f <=="
	printf '%s' "${snap[$f]}"
done
echo
echo "==> /proc/interrupts RES and CAL received over the same window (compare with targets) <=="
printf '%s\n' "$irq_before" | grep -E '^ *(RES|CAL):' > "$out/irq.before"
printf '%s\n' "$irq_after" | grep -E '^ *(RES|CAL):' > "$out/irq.after"
paste -d'|' "$out/irq.before" "$out/irq.after" | awk -F'|' '{
	nb = split($1, b, " "); split($2, a, " "); printf "%-4s", b[1]
	for (i = 2; i <= nb && b[i] ~ /^[0-9]+$/; i++) printf "%11d", a[i] - b[i]
	print ""
}'
# Stack attribution was on during the load: the three most counted stacks of each kind.
for t in RES CFS CFM RSC WKL; do
	echo
	echo "==> $D/stacks/$t (header and the 3 most counted stacks) <=="
	awk 'BEGIN { RS = ""; ORS = "\n\n" } NR <= 4' "$D/stacks/$t"
done
# Preempt notifiers: an attached spinner sharing CPU 1 with an unattached one (preempted), an attached
# task sleeping in a loop (voluntary); read while they wait to be killed.
echo
echo "attached workload: rrp-load spin on CPU1 beside an unattached spinner; rrp-load sleeper 200 x 2 ms"
read -r -d '' sched_before < "$D/sched"
echo go | "$load" spin 1 2500 > /dev/null & rival=$!
echo go | "$repo/scripts/resched-attach" "$load" spin 1 1500 > /dev/null & hog=$!
echo go | "$repo/scripts/resched-attach" "$load" sleeper 200 2000 > /dev/null & sl=$!
sleep 4
for f in sched tasks; do
	echo
	echo "==> $D/$f <=="
	cat "$D/$f"
done
echo
echo "==> the kernel's own counts (/proc/<pid>/status, counted from fork; ours from attach) <=="
for pid in $hog $sl; do
	printf '%8s %-16s voluntary_ctxt_switches %6s nonvoluntary_ctxt_switches %6s\n' "$pid" \
		"$(cat /proc/$pid/comm)" \
		"$(awk '/^voluntary_ctxt_switches/ {print $2}' /proc/$pid/status)" \
		"$(awk '/^nonvoluntary_ctxt_switches/ {print $2}' /proc/$pid/status)"
done
kill -9 $hog $sl $rival 2>/dev/null
wait $hog $sl $rival 2>/dev/null
check "attached tasks gone after they exit" test "$(grep -c . "$D/tasks")" = 1
check "rmmod resched_probe" rmmod resched_probe
check "kernel log has no WARNING, BUG, Oops or Call Trace" dmesg_clean
finish
