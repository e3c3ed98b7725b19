#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
#
# The one script that builds, boots and tallies: `make check` (x86-64) and `make check-arm64`
# (CHECK_ARCH=arm64), `make check-rt` (CHECK_KCONFIG=rt: 7.3 built PREEMPT_RT). For every kernel of
# CHECK_KERNELS (default "6.12 7.3"): its build checks, then its boots (the boot test; the isolated-CPU
# boot, isolcpus=3 nohz_full=3, for noise/; the scale boot: 512 possible CPUs, 4 online).
#
# x86-64: first the host unit tests (scripts/unit.sh, each test function counted) and the tool's checks;
# build checks fmtcheck, clippy, the warning-free module, the fallback-only build, the race checks' test
# module; then DKMS builds and installs the module for the kernel (scripts/dkms.sh test, its checks
# counted; the boot test's `dkms` part modprobes what it installed); with 7.3, last, the systemd boot
# (scripts/systemd-boot.sh, unless CHECK_SYSTEMD=0: the module DKMS installed, loaded at boot by systemd).
# arm64 (cross-built, booted under qemu-system-aarch64 with an initramfs of Debian arm64
# packages): build checks the warning-free module, the test module and the static load generator.
#
# The builds run one kernel after the other (2 cores); the boots of the kernels run side by side
# (CHECK_PARALLEL=0: one after the other), each guest on one core. Each boot's log is printed when it
# ends. One line per kernel, then one `N passed, N failed` over all: a build check that fails counts one
# failure and leaves that kernel's boots out (said so, never counted as passed); a boot that prints no
# count line counts one failure.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
arch=${CHECK_ARCH:-x86}
# 6.12's module builds in the repo itself, and Kbuild's clean there (clippy, check-build) removes every .ko
# under it, the other kernels' folders included: 6.12 goes first.
kernels=$(printf '%s\n' ${CHECK_KERNELS:-6.12 7.3} | sort -V | tr '\n' ' ')
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
log() { printf 'check: %s\n' "$*" >&2; }
mk() { make -C "$repo" --no-print-directory "$@"; }

counts() { # the last `N passed, N failed` line of a log as "N N"; none, or a non-zero exit ($2): one failure
	local line p f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" 2>/dev/null | tail -1)
	if [ -n "$line" ]; then read -r p _ f _ <<<"$line"; else p=0 f=1; fi
	[ "${2:-0}" = 0 ] || [ "$f" != 0 ] || f=1
	echo "$p $f"
}

# What every kernel shares, and what each builds and boots with.
shared_failed=0 unit_passed=0 unit_failed=0
case "$arch" in
	x86)
		# The tool, its host checks, the load generator, QEMU 10 for the scale boot; and the host unit
		# tests, which count their test functions.
		mk tool tool-check "$repo/tools/rrp-load" || shared_failed=1
		"$repo/scripts/unit.sh" 2>&1 | tee "$logs/unit"
		unit_rc=${PIPESTATUS[0]}
		read -r unit_passed unit_failed < <(counts "$logs/unit" "$unit_rc")
		"$repo/scripts/qemu-x2apic.sh" build || shared_failed=1
		# CHECK_KCONFIG=rt (make check-rt): the PREEMPT_RT kernel with lockdep instead of the default one.
		kconfig=${CHECK_KCONFIG:-default}
		builds=(fmtcheck clippy check-build fallback testmod)
		timeout=${BOOT_TIMEOUT:-}
		;;
	arm64)
		# qemu-system-aarch64, the guest's root and the sysroot of the static load generator.
		{ "$repo/scripts/setup.sh" --arm64 && "$repo/scripts/arm64-root.sh" build; } || shared_failed=1
		kconfig=arm64
		builds=(check-build testmod "$repo/tools/rrp-load-arm64")
		timeout=${BOOT_TIMEOUT:-2400}
		;;
	*) echo "check.sh: unknown CHECK_ARCH '$arch' (x86 or arm64)" >&2; exit 2 ;;
esac

booted=()
for k in $kernels; do
	start=$SECONDS
	log "kernel $k ($arch): build checks (the kernel is built first unless cached)"
	mk KVER="$k" KCONFIG="$kconfig" "${builds[@]}" 2>&1 | tee "$logs/build-$k"
	if [ "${PIPESTATUS[0]}" = 0 ]; then
		log "kernel $k: build checks passed in $((SECONDS - start)) s"
		booted+=("$k")
		# x86's default kernels: DKMS builds and installs the module for them (the boot test's `dkms`
		# part then modprobes it). Its checks count with the kernel's.
		if [ "$arch" = x86 ] && [ "$kconfig" = default ]; then
			"$repo/scripts/dkms.sh" test "$(mk -s KVER="$k" KCONFIG="$kconfig" kdir)" >"$logs/dkms-$k" 2>&1
			echo $? >"$logs/dkms-$k.rc"
			log "kernel $k: DKMS: $(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logs/dkms-$k" | tail -1 || echo 'no count')"
		fi
	else
		log "kernel $k: build checks FAILED: its boots are left out (1 failure)"
		echo "1" >"$logs/buildfail-$k"
	fi
done

boots() { # kernel: its boots one after the other (the boot test, the isolated CPU, the scale boot), each into its log
	local k=$1 m ko fko tmod
	ko=$(mk -s KVER="$k" KCONFIG="$kconfig" ko)
	fko=$(mk -s KVER="$k" KCONFIG="$kconfig" RRP_FALLBACK_ONLY=1 ko)
	tmod=$(mk -s KVER="$k" KCONFIG="$kconfig" testmod-ko)
	for m in $boot_modes; do
		# An empty BOOT_TIMEOUT is boot.sh's default.
		KVER=$k KCONFIG=$kconfig RRP_KO=$ko RRP_FALLBACK_KO=$fko RRP_TESTMOD=$tmod BOOT_TIMEOUT=$timeout \
			RRP_DKMS=$([ "$(cat "$logs/dkms-$k.rc" 2>/dev/null)" = 0 ] && echo 1 || echo 0) \
			"$repo/qemu/boot.sh" "$m" >"$logs/$m-$k" 2>&1
		echo $? >"$logs/$m-$k.rc"
		log "kernel $k: $m boot ended: $(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logs/$m-$k" | tail -1 || echo 'no count')"
	done
}

# CHECK_BOOTS: which boots (default: the boot test, the isolated-CPU boot, the scale boot;
# `make check-rt` runs the boot test only: see the Makefile).
default_boots="check isol scale"
boot_modes=${CHECK_BOOTS:-$default_boots}
[ "$boot_modes" = "$default_boots" ] || log "boots: $boot_modes only (CHECK_BOOTS)"
pids=()
for k in "${booted[@]}"; do
	if [ "${CHECK_PARALLEL:-1}" = 1 ]; then
		boots "$k" &
		pids+=($!)
	else
		boots "$k"
	fi
done
for p in "${pids[@]}"; do wait "$p"; done
# x86's default run with 7.3: then the module loaded at boot by systemd (scripts/systemd-boot.sh: its own
# kernel, 7.3 with KCONFIG=systemd), alone, after the other guests; CHECK_SYSTEMD=0 leaves it out (said so).
systemd_boot=0
if [ "$arch" = x86 ] && [ "$kconfig" = default ] && [[ " $kernels " == *" 7.3 "* ]]; then
	if [ "${CHECK_SYSTEMD:-1}" = 1 ]; then
		systemd_boot=1
		log "the systemd boot (scripts/systemd-boot.sh; its kernel is built first unless cached)"
		"$repo/scripts/systemd-boot.sh" >"$logs/systemd" 2>&1
		echo $? >"$logs/systemd.rc"
		log "the systemd boot: $(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logs/systemd" | tail -1 || echo 'no count')"
	else
		log "the systemd boot: not run (CHECK_SYSTEMD=0)"
	fi
fi

passed=$unit_passed
failed=$((shared_failed + unit_failed))
summary=()
[ "$arch" != x86 ] || summary+=("unit tests (host): $unit_passed passed, $unit_failed failed")
for k in $kernels; do
	if [ -f "$logs/buildfail-$k" ]; then
		failed=$((failed + 1))
		summary+=("kernel $k: build checks failed, boots not run")
		continue
	fi
	kp=0 kf=0
	if [ -f "$logs/dkms-$k" ]; then
		echo "=== kernel $k: DKMS (scripts/dkms.sh test) ==="
		cat "$logs/dkms-$k"
		read -r kp kf < <(counts "$logs/dkms-$k" "$(cat "$logs/dkms-$k.rc")")
	fi
	for m in $boot_modes; do
		echo "=== kernel $k: $m boot ==="
		cat "$logs/$m-$k"
		read -r p f < <(counts "$logs/$m-$k" "$(cat "$logs/$m-$k.rc" 2>/dev/null || echo 1)")
		kp=$((kp + p)) kf=$((kf + f))
	done
	passed=$((passed + kp)) failed=$((failed + kf))
	summary+=("kernel $k ($arch): $kp passed, $kf failed (boots: $boot_modes)")
done
if [ "$systemd_boot" = 1 ]; then
	echo "=== the systemd boot (7.3, KCONFIG=systemd) ==="
	cat "$logs/systemd"
	read -r sp sf < <(counts "$logs/systemd" "$(cat "$logs/systemd.rc")")
	passed=$((passed + sp)) failed=$((failed + sf))
	summary+=("the systemd boot (7.3): $sp passed, $sf failed")
fi
[ "$shared_failed" = 0 ] || summary+=("the shared set-up failed (x86: the tool's checks, the load generator or QEMU 10; arm64: set-up or the guest root): 1 failure")
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
