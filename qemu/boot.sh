#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# Boots the cached kernel in QEMU (virtme-ng, TCG), runs the guest side (qemu/guest/main.py MODE) with
# the built module, and returns the guest's verdict as the exit code.
#
#   qemu/boot.sh check   the boot test; exit 0 only if every check passed
#   qemu/boot.sh run     the main job: load, show the counters under load
#   qemu/boot.sh bench   the benchmark (make bench); leaves raw.json in BENCH_OUT (bench/out)
#   qemu/boot.sh stress  the stress test (make stress)
#   qemu/boot.sh scale   a guest with 512 possible CPUs (SCALE_CPUS; 4 online): load, read every file,
#                        reset, unload
#   qemu/boot.sh isol    CPU 3 isolated (isolcpus=3 nohz_full=3 rcu_nocbs=3): noise/ there
#   qemu/boot.sh systemd systemd as init (KCONFIG=systemd's kernel): the module DKMS installed, loaded at
#                        boot from /etc/modules-load.d (make check-systemd installs both first)
#
# With KCONFIG=arm64 (make check-arm64): the arm64 kernel under qemu-system-aarch64 (TCG, `virt` with
# GICv3, a Cortex-A57 per vCPU), its root an initramfs of Debian arm64 packages (scripts/arm64-root.sh),
# the repository and the output folder shared by 9p; modes `check` (the parts that apply to arm64,
# qemu/guest/arm64.py among them) and `scale` (512 possible CPUs, 4 online; SCALE_CPUS).
#
# Environment: CPUS (4), MEMORY (1G; 2G for KCONFIG=debug), BOOT_TIMEOUT seconds (900), RRP_ICOUNT (bench:
# 1, instruction-count mode), RRP_TCG_THREAD
# (single; multi is faster but crashes on kprobe patching), KCONFIG
# (default), RRP_KO (the module built for that kernel), RRP_KVM=1 to try KVM (it hangs after the BIOS on
# the machines this was built on, so TCG is the default).
# make check: CHECK_PARTS (e.g. `latency sched`: only these parts after the load/unload checks; default all).
# make check: RRP_TESTMOD (the race checks' test module, make testmod), RRP_FALLBACK_KO (the fallback-only build,
# make fallback), RACES_NOTIFIER_S (20 s of notifier churn), RRP_DKMS=1 (scripts/dkms.sh installed the module
# for this kernel: the `dkms` part modprobes it).
# make stress: STRESS_CYCLES (200), STRESS_CHURN (2000), STRESS_HOTPLUG (10), STRESS_CONCURRENT_S (20),
# STRESS_NOTIFIER_S (120 s of notifier churn, with every tracepoint's iterator in use for kCFI), and the
# pacing of its load, STRESS_DUTY (25: spinners busy 25% of the time) and STRESS_PAUSE_US (2000).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=${1:-check}
kconfig=${KCONFIG:-default}
case "$mode" in
	# The boot test: ~7 min of guest alone (with the race checks), over 15 min beside two other guests.
	check) : "${BOOT_TIMEOUT:=1800}" ;;
	run | bench | stress) ;;
	# 6.12 takes the possible CPUs from the firmware, possible_cpus= only lowers them, and it ignores
	# QEMU's absent (hot-pluggable) CPUs on bare metal and under TCG (acpi_is_processor_usable()). So
	# the guest gets SCALE_CPUS present vCPUs (512) and brings up only CPUS of them (maxcpus=): nr_cpu_ids
	# is 512 with 4 online. APIC IDs above 254 need x2APIC, which QEMU's TCG has from 8.1 on: this boot
	# runs bookworm-backports' QEMU 10 (scripts/qemu-x2apic.sh, unpacked into the cache) with an
	# intel-iommu for x2APIC's interrupt remapping (eim=on; the kernel's DMA remapping stays off).
	scale) [ "$kconfig" = arm64 ] || {
		qemu_bin=$("$repo/scripts/qemu-x2apic.sh" path)
		[ -x "$qemu_bin" ] || { echo "boot.sh: no $qemu_bin (run scripts/qemu-x2apic.sh build)" >&2; exit 1; }
		export QEMU_MODULE_DIR="${qemu_bin%/bin/*}/lib/x86_64-linux-gnu/qemu"
		smp_extra=" -L $("$repo/scripts/qemu-x2apic.sh" data) -smp ${SCALE_CPUS:-512} -device intel-iommu,intremap=on,eim=on"
		# no_timer_check: the kernel's check that the timer interrupt comes through the remapped IO-APIC
		# waits a fixed number of loops, which a host busy with other guests and builds outran (a panic,
		# "timer doesn't work through Interrupt-remapped IO-APIC", 2026-12-03); the emulated timer works.
		append_extra=" maxcpus=${CPUS:-4} intel_iommu=off no_timer_check"
		# udev's coldplug of 512 CPU devices under single-threaded TCG: the boot alone takes 8-9 minutes.
		: "${BOOT_TIMEOUT:=1800}"
	} ;;
	# CPU 3 isolated as its users isolate theirs: out of the scheduler's domains and without its tick
	# while it runs one task (the kernel has CONFIG_NO_HZ_FULL); its RCU callbacks go elsewhere.
	isol) append_extra=" isolcpus=3 nohz_full=3 rcu_nocbs=3"; : "${BOOT_TIMEOUT:=1200}" ;;
	# systemd as init (vng --systemd) on the kernel built for it (KCONFIG=systemd), booted as an installed
	# kernel: from a copy of its image outside its tree, so that the guest's /lib/modules is the host's,
	# where scripts/dkms.sh installed the module; the guest part (systemd.py) runs once systemd is up.
	systemd) kconfig=systemd; vng_extra=(--systemd); : "${BOOT_TIMEOUT:=900}" ;;
	*) echo "boot.sh: unknown mode '$mode' (check, run, bench, stress, scale, isol or systemd)" >&2; exit 2 ;;
esac
# The guest's Python: the system's (the guest shares the host's root, without a login's PATH).
python=/usr/bin/python3

kimage=$("$repo/scripts/kernel.sh" kimage "$kconfig")
[ -f "$kimage" ] || { echo "boot.sh: no kernel at $kimage (run 'make kernel')" >&2; exit 1; }
ko=${RRP_KO:-$repo/resched_probe.ko}
[ -f "$ko" ] || { echo "boot.sh: no $ko (run 'make')" >&2; exit 1; }
memory=${MEMORY:-1G}
[ "${KCONFIG:-default}" = debug ] && memory=${MEMORY:-2G}

RRP_LOG=boot
. "$repo/scripts/lib.sh"
cache=$RRP_CACHE
mkdir -p "$cache/runs"
out=$(mktemp -d "$cache/runs/$mode.XXXXXX")
console="$out/console.log"
if [ "$mode" = systemd ]; then
	cp "$kimage" "$out/vmlinuz"
	kimage=$out/vmlinuz
fi

# Single-threaded TCG (all vCPUs on one host thread) by default: slower, but kprobe arming/disarming
# crashed multi-threaded TCG (an int3 from text_poke_bp taken after the site was restored, or a jump to
# 0: 1 in ~19 load/unload cycles under load, even of an empty C kprobe module, once in ~16 boot tests),
# and 150 cycles ran clean single-threaded. RRP_TCG_THREAD=multi brings the faster mode back.
# The benchmark runs in QEMU's instruction-count mode (RRP_ICOUNT=1, its default for bench): guest time
# follows the instructions executed (1 ns each, no sleeping when idle), so ratios repeat from run to run
# whatever the host is doing; its "ns" are instructions, not cycles.
accel=(--disable-kvm)
icount=
[ "$mode" = bench ] && [ "${RRP_ICOUNT:-1}" = 1 ] && icount=" -icount shift=0,sleep=off"
[ "${RRP_TCG_THREAD:-single}" = single ] && accel+=(--qemu-opts="-accel tcg,thread=single$icount${smp_extra:-}")
[ "${RRP_KVM:-0}" = 1 ] && [ -w /dev/kvm ] && accel=()

parts=${CHECK_PARTS:-}
parts=${parts// /,}
start=$SECONDS
if [ "$kconfig" = arm64 ]; then
	# arm64 virt: up to 512 vCPUs with GICv3 under TCG, all present; maxcpus= brings up CPUS of them.
	initrd=$("$repo/scripts/arm64-root.sh" path)
	[ -f "$initrd" ] || { echo "boot.sh: no arm64 root at $initrd (run scripts/arm64-root.sh build)" >&2; exit 1; }
	smp=${CPUS:-4}
	[ "$mode" = isol ] || append_extra=
	[ "$mode" = scale ] && { smp=${SCALE_CPUS:-512}; append_extra=" maxcpus=${CPUS:-4}"; }
	# Multi-threaded TCG (RRP_TCG_THREAD=single for the other): x86's crash came from its int3 text-poke
	# protocol; arm64 patches kprobes under stop_machine, and no arm64 boot has crashed in it (8 boots on
	# 2026-11-24, each with 20+ load/unload cycles and probes armed under load).
	thread=${RRP_TCG_THREAD:-multi}
	echo "boot: $kimage, $smp vCPUs (arm64 virt, GICv3, TCG $thread), root $initrd; guest output in $out" >&2
	set +e
	timeout --kill-after=20 "${BOOT_TIMEOUT:-900}" \
		qemu-system-aarch64 -M virt,gic-version=3 -cpu cortex-a57 -accel "tcg,thread=$thread" \
		-smp "$smp" -m "${MEMORY:-1G}" -nographic -no-reboot \
		-kernel "$kimage" -initrd "$initrd" \
		-fsdev "local,id=repo,path=$repo,security_model=none,readonly=on" \
		-device virtio-9p-device,fsdev=repo,mount_tag=repo \
		-fsdev "local,id=out,path=$out,security_model=none" \
		-device virtio-9p-device,fsdev=out,mount_tag=out \
		-append "console=ttyAMA0 panic=-1$append_extra RRP_REPO=$repo RRP_OUT=$out RRP_MODE=$mode RRP_ENV=RRP_KO=$ko,RRP_TESTMOD=${RRP_TESTMOD:-},CHECK_PARTS=$parts,SCALE_CPUS=$smp" \
		</dev/null >"$console" 2>&1
	vng_rc=$?
	set -e
else
echo "boot: $kimage, ${CPUS:-4} vCPUs, ${accel[*]:-KVM}; guest output in $out" >&2
set +e
# root=/dev/root: the tiny kernel has no CONFIG_BLOCK, and without it vng's 9p root is never mounted.
# stdin closed and no TTY: vng must not wait for a terminal. The guest's verdict comes back in
# $out/result, not through vng's exit code (which has been seen to be 255 after a successful script).
timeout --kill-after=20 "${BOOT_TIMEOUT:-900}" \
	vng --verbose --run "$kimage" ${vng_extra[@]+"${vng_extra[@]}"} ${qemu_bin:+--qemu "$qemu_bin"} "${accel[@]}" --disable-microvm --cpus "${CPUS:-4}" --memory "$memory" \
	--append "root=/dev/root tsc=reliable${append_extra:-}" --rwdir "$out" --cwd "$repo" \
	--exec "env RRP_KO=$ko RRP_FALLBACK_KO=${RRP_FALLBACK_KO:-} RRP_DKMS=${RRP_DKMS:-0} RRP_TESTMOD=${RRP_TESTMOD:-} RACES_NOTIFIER_S=${RACES_NOTIFIER_S:-20} STRESS_NOTIFIER_S=${STRESS_NOTIFIER_S:-120} CHECK_PARTS=$parts SCALE_CPUS=${SCALE_CPUS:-512} BENCH_ROUNDS=${BENCH_ROUNDS:-11} BENCH_CONFIGS=${BENCH_CONFIGS:-} BENCH_WORKLOADS=${BENCH_WORKLOADS:-} STRESS_CYCLES=${STRESS_CYCLES:-200} STRESS_CHURN=${STRESS_CHURN:-2000} STRESS_HOTPLUG=${STRESS_HOTPLUG:-10} STRESS_DUTY=${STRESS_DUTY:-25} STRESS_PAUSE_US=${STRESS_PAUSE_US:-2000} STRESS_CONCURRENT_S=${STRESS_CONCURRENT_S:-20} $python $repo/qemu/guest/main.py $mode $repo $out" \
	</dev/null >"$console" 2>&1
vng_rc=$?
set -e
fi
echo "boot: guest finished in $((SECONDS - start)) s ($([ "$kconfig" = arm64 ] && echo qemu || echo vng) exit $vng_rc)" >&2

# The first kernel report in the console, with what follows it (a crash's tail often shows only the
# last of several), found by the guest's own matcher (qemu/guest/lib.py).
first_report() {
	"$python" "$repo/qemu/guest/lib.py" first-report "$console" >&2 || true
}

[ -f "$out/test.log" ] && cat "$out/test.log"
if [ "$vng_rc" = 124 ] || [ "$vng_rc" = 137 ]; then
	echo "boot: guest timed out after ${BOOT_TIMEOUT:-900} s; console tail:" >&2
	tail -40 "$console" >&2
	first_report
	echo "0 passed, 1 failed"
	exit 1
fi
if [ ! -f "$out/result" ]; then
	echo "boot: the guest left no verdict; console tail:" >&2
	tail -60 "$console" >&2
	first_report
	echo "0 passed, 1 failed"
	exit 1
fi
read -r passed failed < "$out/result"
if [ "$failed" != 0 ] || [ "$passed" = 0 ]; then
	echo "boot: guest checks failed; kernel log tail:" >&2
	if [ -f "$out/dmesg.log" ]; then tail -40 "$out/dmesg.log" >&2; else tail -40 "$console" >&2; fi
	first_report
	exit 1
fi
if [ "$mode" = bench ]; then
	mkdir -p "${BENCH_OUT:-$repo/bench/out}"
	cp "$out/bench.json" "${BENCH_OUT:-$repo/bench/out}/raw.json"
fi
