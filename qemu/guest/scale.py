# SPDX-License-Identifier: GPL-2.0
"""The scale test (`make check` and `make check-arm64`, second boot): a guest with 512 present CPUs
(QEMU `-smp 512`; on x86 with x2APIC and an intel-iommu, see qemu/boot.sh) of which it brings up 4
(`maxcpus=4`), so that `nr_cpu_ids` is 512 as on a large server: the module loads, states its memory by the formula of docs/design.md, every file reads (the sparse
`pairs` view included), a reset and a load count, and it unloads."""

import os

import re
import subprocess

from lib import D, KO_NAME, PREFIX, dmesg, insmod, module_listed, module_tags, parse_table, read, rmmod, write_errno

FILES = ["cpus", "ipi", "targets", "matrix", "pairs", "callbacks", "probes", "sched", "tasks", "stacks_enable",
         "stacks_capacity"]


def possible():
    """The number of possible CPUs (/sys/devices/system/cpu/possible, e.g. `0-511`)."""
    ids = [int(x) for x in re.findall(r"\d+", read("/sys/devices/system/cpu/possible"))]
    return ids[-1] + 1


def main(c, g):
    n = possible()
    want_n = int(os.environ.get("SCALE_CPUS", "512"))
    c.check(f"the guest has {want_n} possible CPUs ({n}), 4 online",
            n == want_n and read("/sys/devices/system/cpu/online").strip() == "0-3")
    c.check(f"insmod {KO_NAME}.ko with nr_cpu_ids = {n}", insmod(g.ko))
    if not module_listed():
        return
    line = [l for l in dmesg().splitlines() if f"{PREFIX}loaded" in l]
    # The formula of docs/design.md: 2 windows x (n CPUs x (6n + 2,682) counters x 8 bytes + 5 stack tables x
    # 512 entries x 8 x (18 + ceil(n/64)) bytes) + 144n x 8 bytes (4 latency starts and the switch in progress
    # per CPU; the interruptions in progress and their slots).
    want = (2 * (n * (6 * n + 2682) * 8 + 5 * 512 * 8 * (18 + (n + 63) // 64)) + 144 * n * 8) // 1024
    c.check(f"the load message states {n} possible CPUs and the memory of the formula ({want} KiB)",
            bool(line) and f"of {n} possible" in line[-1] and f"memory: {want} KiB" in line[-1],
            line[-1] if line else "no load message")
    bad = []
    for name in FILES + [f"stacks/{t}" for t in module_tags()]:
        try:
            read(f"{D}/{name}")
        except OSError as e:
            bad.append(f"{name}: {e}")
    c.check("every file reads", not bad, "\n".join(bad))
    cols, rows = parse_table(read(f"{D}/ipi"))
    c.check("ipi shows the 4 online CPUs as columns", cols == [0, 1, 2, 3], read(f"{D}/ipi")[:500])
    c.check("reset accepted", write_errno(f"{D}/reset", b"1") == 0)
    load = subprocess.run([g.load, "busypong", "0", "1", "300"], capture_output=True, text=True)
    pairs = read(f"{D}/pairs")
    top = pairs.splitlines()[2:3]
    # The wakeups between CPU0 and CPU1 are RES IPIs, or wakelist IPIs where the kernel queues them there:
    # arm64's 512-CPU boot (6.12, 2026-12-05) sent WKL 302 each way and no RES, as ttwu_queue_cond() does
    # for CPUs it finds sharing no cache.
    c.check("after a busy ping-pong 0<->1, pairs lists nonzero pairs, most counted first, and RES or WKL "
            "between CPU0 and CPU1 among them",
            load.returncode == 0 and re.match(r"^\d+ nonzero", pairs)
            and re.search(r"(RES|WKL) +CPU0 +CPU1", pairs) and re.search(r"(RES|WKL) +CPU1 +CPU0", pairs)
            and bool(top),
            pairs[:1500])
    counts = [int(l.split()[0]) for l in pairs.splitlines()[2:]]
    c.check("pairs is sorted, most counted first", counts == sorted(counts, reverse=True) and counts,
            pairs[:1500])
    c.check(f"rmmod {KO_NAME}", rmmod())
