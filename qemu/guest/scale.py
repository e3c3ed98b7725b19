# SPDX-License-Identifier: GPL-2.0
"""The scale test (`make check`, second boot): a guest with `possible_cpus=512` and 4 online CPUs, so
that `nr_cpu_ids` is 512 as on a large server: the module loads, states its memory, every file reads
(the sparse `pairs` view included), a reset and a load count, and it unloads."""

import re
import subprocess

from lib import D, KO_NAME, PREFIX, dmesg, insmod, module_listed, module_tags, parse_table, read, rmmod, write_errno

FILES = ["cpus", "ipi", "targets", "matrix", "pairs", "probes", "sched", "tasks", "stacks_enable",
         "stacks_capacity"]


def possible():
    """The number of possible CPUs (/sys/devices/system/cpu/possible, e.g. `0-511`)."""
    ids = [int(x) for x in re.findall(r"\d+", read("/sys/devices/system/cpu/possible"))]
    return ids[-1] + 1


def main(c, g):
    n = possible()
    c.check(f"the guest has 512 possible CPUs ({n}), 4 online", n == 512 and read("/sys/devices/system/cpu/online").strip() == "0-3")
    c.check(f"insmod {KO_NAME}.ko with nr_cpu_ids = {n}", insmod(g.ko))
    if not module_listed():
        return
    line = [l for l in dmesg().splitlines() if f"{PREFIX}loaded" in l]
    # 2 windows x (512 CPUs x (5 x 512 + 10) counters x 8 bytes + 5 stack tables x 512 x 8 x (18 + 8)).
    want = 2 * (512 * (5 * 512 + 10) * 8 + 5 * 512 * 8 * (18 + 8)) // 1024
    c.check(f"the load message states 512 possible CPUs and the memory of the formula ({want} KiB)",
            bool(line) and "of 512 possible" in line[-1] and f"memory: {want} KiB" in line[-1],
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
    c.check("after a busy ping-pong 0<->1, pairs lists nonzero pairs, most counted first, and RES "
            "between CPU0 and CPU1 among them",
            load.returncode == 0 and re.match(r"^\d+ nonzero", pairs)
            and re.search(r"RES +CPU[01] +CPU[01]", pairs) and bool(top),
            pairs[:1500])
    counts = [int(l.split()[0]) for l in pairs.splitlines()[2:]]
    c.check("pairs is sorted, most counted first", counts == sorted(counts, reverse=True) and counts,
            pairs[:1500])
    c.check(f"rmmod {KO_NAME}", rmmod())
