# SPDX-License-Identifier: GPL-2.0
"""The arm64 receive side and what arm64 lacks (`make check-arm64`, with the ipi, engine and sched parts):
`received` against /proc/interrupts IPI0 and IPI1 exactly over a window with real load, IPI delivery
measured from `ipi:ipi_entry`, the probes arm64 uses, and stack recording refused (no unwinder from a
probe's registers is exported there)."""

import errno
import os
import re

from latency import N_MB, N_PING, received_over_load, summary, table
from lib import D, PREFIX, dmesg, online_cpus, parse_table, read, write_errno


def main(c, g):
    cpus = online_cpus()
    machine = os.uname().machine
    c.check(f"the guest is arm64 ({machine})", machine == "aarch64")
    probes = {l.split()[0]: l.split() for l in read(f"{D}/probes").splitlines()}
    print("# probes:\n# " + read(f"{D}/probes").replace("\n", "\n# "))
    via = {tag: dict(kv.split("=") for kv in f[3:]).get("via") for tag, f in probes.items()}
    # Where the kernel has sched_set_need_resched_tp (kallsyms: its iterator), RSC comes from it.
    rsc_tp = "__traceiter_sched_set_need_resched_tp" in read("/proc/kallsyms")
    c.check("probes: RES and CFS via ipi_send_cpu, CFM via ipi_send_cpumask, WKL via csd_queue_cpu "
            f"(tracepoints), RSC {'via sched_set_need_resched_tp' if rsc_tp else 'kprobe'}, every one ok",
            via == {"RES": "tracepoint", "CFS": "tracepoint", "CFM": "tracepoint",
                    "RSC": "tracepoint" if rsc_tp else "kprobe", "WKL": "tracepoint"}
            and probes["WKL"][1] == "csd_queue_cpu"
            and all(f[2] == "ok" for f in probes.values()), str(probes))

    # --- received == /proc/interrupts IPI0 (RES) and IPI1 (CAL), exactly, over a window with load -------
    cols, rows = parse_table(read(f"{D}/received"))
    c.check("received: one column per online CPU, rows RES CAL RCO CCO (arm64 has one call-function IPI)",
            cols == cpus and list(rows) == ["RES", "CAL", "RCO", "CCO"], read(f"{D}/received"))
    write_errno(f"{D}/reset", b"1")
    print("# ipi and received after the load (docs/kernels.md's arm64 excerpt):")
    window = received_over_load(c, g, cpus, show=("ipi", "received"))
    ipi_text = read(f"{D}/latency/ipi")
    if window:
        before, after, got = window
        c.check("received RES and CAL moved by as much as /proc/interrupts IPI0 and IPI1 on every CPU "
                f"(offsets {before} then {after}), with the load's IPIs on the expected CPUs",
                before == after and min(got["RES"][0], got["RES"][1]) >= N_PING // 2
                and min(got["CAL"][2], got["CAL"][3]) >= N_PING // 2, str(got))

    # --- IPI delivery from ipi:ipi_entry ----------------------------------------------------------------
    print(ipi_text)
    _, ipi_rows = table(ipi_text)
    counts = {k: summary(ipi_text, k) or 0 for k in ("RES", "CFS", "CFM")}
    c.check(f"latency/ipi: delivery measured per kind ({counts}), RES on busy CPUs 0-1 and CFS on idle 2-3",
            counts["RES"] >= N_PING // 2 and counts["CFS"] >= N_PING // 2 and counts["CFM"] >= N_MB // 10
            and all(ipi_rows.get("RN", {}).get(x, 0) > 0 for x in (0, 1))
            and all(ipi_rows.get("SN", {}).get(x, 0) > 0 for x in (2, 3)), str(ipi_rows))

    # --- no stacks on arm64: refused, said, nothing changed ---------------------------------------------
    e = write_errno(f"{D}/stacks_enable", b"1")
    c.check(f"stacks_enable <- 1: EOPNOTSUPP on arm64 (errno {e}), stays 0, logged",
            e == errno.EOPNOTSUPP and read(f"{D}/stacks_enable") == "0\n"
            and f"{PREFIX}stacks_enable: stack recording needs the x86-64 unwinder" in dmesg())
    e = write_errno(f"{D}/stacks_enable", b"2")
    c.check(f"stacks_enable <- 2: EINVAL (errno {e})", e == errno.EINVAL)
    texts = "".join(read(f"{D}/{n}") for n in ("ipi", "targets", "matrix", "received", "probes"))
    c.check("no raw kernel addresses in the files", not re.search(r"ffff[0-9a-f]{12}", texts))
