# SPDX-License-Identifier: GPL-2.0
"""IPI and resched checks, run with the module loaded: real load, cross-checks against
/proc/interrupts and the ipi tracepoints, reset and bad input, unload under load."""

import errno
import os
import re
import subprocess
import time

from lib import (ARG0, D, bracketed, lazy_fair, rt_kernel, ttwu_queue, res_load, PREFIX, SEND_CFM, SEND_CFS, SEND_RES, TRACING, tracefs, dmesg, dmesg_count, module_symbols, one_byte_reads, online_cpus,
                 parse_matrix, parse_table, proc_interrupts, read, run, snapshot, write_errno)

N_PING = 3000
N_MB = 1000
# What `probes` must list, in this order: a statement of the expected output.
EXPECTED_TAGS = ["RES", "CFS", "CFM", "RSC", "WKL"]
# The kernel's own count of the IPIs sent, by hist triggers on kprobe events on the architecture's send
# functions: the module counts from the ipi tracepoints, so the oracle must not.
ORACLE = {
    "rrp_hres": (f"{SEND_RES} cpu={ARG0}:s32", "hist:keys=common_cpu,cpu:size=256"),
    "rrp_hcfs": (SEND_CFS, "hist:keys=common_cpu:size=128"),
    "rrp_hcfm": (SEND_CFM, "hist:keys=common_cpu:size=128"),
}


def oracle_on():
    for name, (spec, _) in ORACLE.items():
        tracefs("kprobe_events", f"p:{name} {spec}\n", append=True)
    for name, (_, trig) in ORACLE.items():
        tracefs(f"events/kprobes/{name}/trigger", trig)


def oracle_off():
    hists = {name: read(f"{TRACING}/events/kprobes/{name}/hist") for name in ORACLE}
    for name, (_, trig) in ORACLE.items():
        tracefs(f"events/kprobes/{name}/trigger", "!" + trig)
    tracefs("kprobe_events", "")
    return hists


def oracle_read():
    """The oracle's hist files as they are now."""
    return {name: read(f"{TRACING}/events/kprobes/{name}/hist") for name in ORACLE}


def oracle_counts(hists):
    """({(sender, target): RES}, {sender: CFS}, {sender: CFM}) from the oracle's hist files."""
    tp_res, tp_cfs, tp_cfm = {}, {}, {}
    for m in re.finditer(r"common_cpu:\s*(\d+), cpu:\s*(\d+) \} hitcount:\s*(\d+)", hists["rrp_hres"]):
        s, t, n = map(int, m.groups())
        tp_res[(s, t)] = tp_res.get((s, t), 0) + n
    for m in re.finditer(r"common_cpu:\s*(\d+) \} hitcount:\s*(\d+)", hists["rrp_hcfs"]):
        tp_cfs[int(m.group(1))] = int(m.group(2))
    for m in re.finditer(r"common_cpu:\s*(\d+) \} hitcount:\s*(\d+)", hists["rrp_hcfm"]):
        tp_cfm[int(m.group(1))] = int(m.group(2))
    return tp_res, tp_cfs, tp_cfm


def delta(after, before):
    return {k: {cpu: after[k][cpu] - before[k].get(cpu, 0) for cpu in after[k]} for k in after}


def mdelta(after, before):
    return {k: {s: {t: after[k][s][t] - before[k][s][t] for t in after[k][s]} for s in after[k]}
            for k in after}


def hits_missed(line):
    f = dict(kv.split("=") for kv in line.split()[3:])
    return int(f["hits"]), int(f["missed"])


def totals():
    return {k: sum(v.values()) for k, v in parse_table(read(f"{D}/ipi"))[1].items()}


def cells():
    return parse_table(read(f"{D}/ipi"))[1]


def main(c, g):
    load = g.load
    cpus = online_cpus()

    # --- What the module shows -------------------------------------------------------------------------
    probes = read(f"{D}/probes").splitlines()
    c.check(f"probes lists {' '.join(EXPECTED_TAGS)}, every one ok",
            [l.split()[0] for l in probes] == EXPECTED_TAGS
            and all(l.split()[2] == "ok" for l in probes), "\n".join(probes))
    for name, mode in [("ipi", 0o400), ("targets", 0o400), ("matrix", 0o400), ("probes", 0o400),
                       ("reset", 0o200)]:
        got = os.stat(f"{D}/{name}").st_mode & 0o777
        c.check(f"{name} has mode {mode:o}", got == mode, f"mode {got:o}")
    ipi_cols, ipi_rows = parse_table(read(f"{D}/ipi"))
    c.check("ipi: one column per online CPU, rows RES CFS CFM CFT RSC RSL RSP WKL NIP",
            ipi_cols == cpus and list(ipi_rows) == ["RES", "CFS", "CFM", "CFT", "RSC", "RSL", "RSP", "WKL", "NIP"],
            read(f"{D}/ipi"))
    t_cols, t_rows = parse_table(read(f"{D}/targets"))
    c.check("targets: one column per online CPU, rows RES CAL RSC WKL NIP",
            t_cols == cpus and list(t_rows) == ["RES", "CAL", "RSC", "WKL", "NIP"], read(f"{D}/targets"))
    c.check("no raw kernel addresses in any file",
            not any(re.search(r"ffff[0-9a-f]{12}", read(f"{D}/{n}")) for n in
                    ("ipi", "targets", "matrix", "probes")))

    # seq_file makes the text at the first read(2) and hands it out a byte at a time: the same words as
    # a large read, each count between a large read's before and after (equal when nothing moved; on
    # PREEMPT_RT the reschedule requests never stand still).
    for name in ("ipi", "targets", "matrix", "probes"):
        big = read(f"{D}/{name}")
        small = one_byte_reads(f"{D}/{name}")
        after = read(f"{D}/{name}")
        c.check(f"{name}: 1-byte reads return what one large read returns (counts between the large reads "
                f"before and after: {'equal' if big == after else 'moving'})", bracketed(big, small, after),
                f"before:\n{big}\n1-byte:\n{small}\nafter:\n{after}")

    # --- Load, with the kernel's own counts beside ours ------------------------------------------------
    oracle_on()

    # Sent window contains the received window: ours first, /proc/interrupts second, and the reverse after.
    # The oracle is read on both sides of each snapshot: its counts inside our window and around it
    # bracket ours, however long a snapshot takes (on PREEMPT_RT it may retry for 10 s).
    hists_outer0 = oracle_read()
    before, ok_before = snapshot()
    hists0 = oracle_read()
    irq_before = proc_interrupts()
    loads = [subprocess.Popen(res_load(load, 0, 1, N_PING), stdout=subprocess.PIPE, text=True),
             subprocess.Popen([load, "pingpong", "2", "3", str(N_PING)], stdout=subprocess.PIPE, text=True)]
    rcs = [p.wait(timeout=600) for p in loads]
    mb = run([load, "membarrier", str(N_MB)])
    irq_after = proc_interrupts()
    hists_inner1 = oracle_read()
    after, ok_after = snapshot()
    hists = oracle_off()

    print("# load:", " | ".join(p.stdout.read().strip() for p in loads), "|", mb.stdout.strip())
    c.check("load generators ran (busy ping-pong 0-1, idle ping-pong 2-3, membarrier)", rcs == [0, 0] and mb.returncode == 0,
            mb.stderr)
    # On PREEMPT_RT the IPIs of its real-time threads (push/pull, timers) may never let the files stand
    # still for 10 s under a busy host: there the cross-file sums below (which use the after snapshot)
    # are the check, and this is only said.
    if rt_kernel():
        print(f"# snapshots self-consistent (not counted on PREEMPT_RT): before {ok_before}, after {ok_after}")
    else:
        c.check(f"snapshots before and after are self-consistent (IPI rows read the same around them: before "
                f"{ok_before}, after {ok_after})", ok_before and ok_after)

    ipi = delta(parse_table(after["ipi"])[1], parse_table(before["ipi"])[1])
    tgt = delta(parse_table(after["targets"])[1], parse_table(before["targets"])[1])
    mat = mdelta(parse_matrix(after["matrix"]), parse_matrix(before["matrix"]))
    irq = delta({k: irq_after[k] for k in ("RES", "CAL")}, irq_before)
    print("# deltas over the load window, per CPU", cpus)
    for k, v in ipi.items():
        print(f"#   ipi     {k}: {[v[x] for x in cpus]}")
    for k, v in tgt.items():
        print(f"#   targets {k}: {[v[x] for x in cpus]}")
    for k in ("RES", "CAL"):
        print(f"#   /proc/interrupts {k}: {[irq[k][x] for x in cpus]}")

    # Counts rise where the load is. Busy targets (0-1): the wakee preempts the spinner from the waking
    # CPU, a reschedule IPI each way. Idle targets (2-3): the wakeup is queued on the target's wakelist
    # and a call-function-single IPI wakes it. CPU 0 sends a call-function IPI to CPUs 1-3 for (almost)
    # every membarrier.
    # Where the kernel makes a wakeup preemption lazy (the lazy model, PREEMPT_RT), the busy CPU is asked
    # lazily, with no IPI: the requests are counted as lazy (RSL) by the waking CPU. Where it does not
    # queue remote wakeups (NO_TTWU_QUEUE: PREEMPT_RT), the idle CPU is woken by a reschedule request
    # and its IPI instead of a wakelist entry and a call-function IPI.
    lazy, queued = lazy_fair(), ttwu_queue()
    print(f"# wakeup preemption {'lazy' if lazy else 'immediate'}; remote wakeups "
          f"{'queued on the wakelist (TTWU_QUEUE)' if queued else 'not queued (NO_TTWU_QUEUE)'}")
    for a, b in [(0, 1), (1, 0)]:
        if lazy:
            c.check(f"busy ping-pong: CPU{a} made lazy resched requests (RSL {ipi['RSL'][a]} >= {N_PING // 2}), "
                    f"and sent CPU{b} few reschedule IPIs ({mat['RES'][a][b]} <= {N_PING // 4})",
                    ipi["RSL"][a] >= N_PING // 2 and mat["RES"][a][b] <= N_PING // 4)
        else:
            c.check(f"busy ping-pong: CPU{a} sent reschedule IPIs to CPU{b} ({mat['RES'][a][b]} >= {N_PING // 2})",
                    mat["RES"][a][b] >= N_PING // 2)
        c.check(f"busy ping-pong: CPU{a} made remote resched requests for CPU{b} "
                f"(RSC {tgt['RSC'][b]} >= {N_PING // 2})", tgt["RSC"][b] >= N_PING // 2)
    for a, b in [(2, 3), (3, 2)]:
        if queued:
            c.check(f"idle ping-pong: CPU{a} sent call-function IPIs to CPU{b} ({mat['CAL'][a][b]} >= {N_PING // 2})",
                    mat["CAL"][a][b] >= N_PING // 2)
            c.check(f"idle ping-pong: CPU{a} queued wakeups on CPU{b}'s wakelist (WKL {tgt['WKL'][b]} >= {N_PING // 2})",
                    tgt["WKL"][b] >= N_PING // 2)
        else:
            woke = mat["RES"][a][b] + tgt["NIP"][b]
            c.check(f"idle ping-pong: CPU{a} woke CPU{b} by reschedule IPIs or polling (RES {mat['RES'][a][b]} + "
                    f"NIP to it {tgt['NIP'][b]} >= {N_PING // 2}), queued no wakeup (WKL {tgt['WKL'][b]})",
                    woke >= N_PING // 2 and tgt["WKL"][b] == 0)
    # membarrier IPIs only the CPUs whose *current* task is one of ours at that instant. rrp-load starts
    # timing once every spinner runs on its CPU, yet under TCG (4 vCPUs on 2 host cores) the share of calls
    # that found them there varied from 25% to 100% between runs: hence N/10 here. Exactness is checked
    # below against /proc/interrupts and the tracepoints.
    mb_sends = ipi["CFM"][0] + ipi["CFS"][0]
    c.check(f"membarrier: CPU0 made call-function sends ({mb_sends} >= {N_MB // 10})",
            mb_sends >= N_MB // 10)
    for t in cpus[1:]:
        c.check(f"membarrier: CPU0 sent call-function IPIs to CPU{t} ({mat['CAL'][0][t]} >= {N_MB // 10})",
                mat["CAL"][0][t] >= N_MB // 10)
    c.check(f"resched requests counted (RSC {sum(ipi['RSC'].values())} > 0)",
            sum(ipi["RSC"].values()) > 0)

    # The matrix adds up to the ipi and targets rows (in one consistent snapshot).
    # Equal where the snapshot stood still; where it never did (PREEMPT_RT), between `ipi` and `targets`
    # read before `matrix` and read again after it.
    A, A2 = parse_table(after["ipi"])[1], parse_table(after["ipi+"])[1]
    T, T2 = parse_table(after["targets"])[1], parse_table(after["targets+"])[1]
    if ok_after:
        A2, T2 = A, T
    M = parse_matrix(after["matrix"])
    bad = []

    def within(what, got, lo, hi):
        if not lo <= got <= hi:
            bad.append(f"{what}: {got} not in {lo}..{hi}")
    for s in cpus:
        within(f"RES row CPU{s} vs ipi RES", sum(M["RES"][s].values()), A["RES"][s], A2["RES"][s])
        within(f"CAL row CPU{s} vs ipi CFS+CFT", sum(M["CAL"][s].values()), A["CFS"][s] + A["CFT"][s],
               A2["CFS"][s] + A2["CFT"][s])
    for t in cpus:
        within(f"RES column CPU{t} vs targets RES", sum(M["RES"][s][t] for s in cpus), T["RES"][t], T2["RES"][t])
        within(f"CAL column CPU{t} vs targets CAL", sum(M["CAL"][s][t] for s in cpus), T["CAL"][t], T2["CAL"][t])
    c.check("matrix rows sum to ipi (RES, CFS+CFT), columns to targets (RES, CAL)"
            + ("" if ok_after else ", each between those read before and after it (the files never stood still)"),
            not bad, "\n".join(bad))

    # /proc/interrupts per target CPU: received <= sent (IPIs coalesce, never multiply) and >= 90% of it
    # where enough were sent for a share to mean something (on PREEMPT_RT a busy CPU received 82% of the
    # 148 reschedule IPIs sent to it: longer interrupts-off sections, more coalescing).
    # Slack of 2 for IPIs in flight at the window's start (sent before our first read, received after).
    total = {k: sum(tgt[k][t] for t in cpus) for k in ("RES", "CAL")}
    c.check(f"enough IPIs to compare (sent RES+CAL {total['RES'] + total['CAL']} >= 2000)",
            total["RES"] + total["CAL"] >= 2000)
    for k in ("RES", "CAL"):
        for t in cpus:
            sent, got = tgt[k][t], irq[k][t]
            c.check(f"/proc/interrupts {k} CPU{t}: received {got} <= sent {sent}"
                    + (" and >= 90%" if sent >= 1000 else ""),
                    got <= sent + 2 and (sent < 1000 or got >= 0.9 * sent))

    # The kernel's own send functions, counted by kprobe events: inside our window (read just after our
    # first snapshot and just before our last) and around it (just before the first, just after the
    # last). Ours lie between, but for 2 sends astride each edge (the kprobe fires just before the
    # tracepoint in the same function).
    def window(end, start):
        return tuple({k: n - s.get(k, 0) for k, n in e.items()}
                     for e, s in zip(oracle_counts(end), oracle_counts(start)))
    inner = window(hists_inner1, hists0)
    outer = window(hists, hists_outer0)

    def bracket(kind, i, key, ours):
        lo, hi = inner[i].get(key, 0), outer[i].get(key, 0)
        return None if lo - 2 <= ours <= hi + 2 else f"{kind} {key}: ours {ours}, kprobe events {lo}..{hi}"

    for i, (kind, fn, keys, ours) in enumerate([
            ("RES", SEND_RES, [(s, t) for s in cpus for t in cpus], lambda k: mat["RES"][k[0]][k[1]]),
            ("CFS", SEND_CFS, cpus, lambda k: ipi["CFS"][k]),
            ("CFM", SEND_CFM, cpus, lambda k: ipi["CFM"][k])]):
        bad = [b for k in keys if (b := bracket(kind, i, k, ours(k)))]
        c.check(f"{kind} per {'sender->target' if kind == 'RES' else 'sender'} lies between the kprobe events "
                f"on {fn} inside the window and around it", not bad, "\n".join(bad))

    # A kprobe skips (and counts as missed) a hit that comes while another kprobe handler runs on the same
    # CPU: an interrupt inside a handler whose call site has IRQs on (CFM, CFS) that itself wakes a task.
    # Seen at most once in ~50,000 hits; allow 1 in 10,000 per probe, and show the numbers.
    probes = read(f"{D}/probes").splitlines()
    c.check("probes: every probe ok, missed <= 1 in 10,000 hits after the load",
            all(l.split()[2] == "ok" and hits_missed(l)[1] * 10000 <= max(hits_missed(l)[0], 1)
                for l in probes), "\n".join(probes))
    print("# " + "\n# ".join(probes))

    # --- reset and bad input ---------------------------------------------------------------------------
    BAD = [b"", b"0", b"2", b"abc", b"1 1", b"x" * 4096, b"\0", b"1\0", b"18446744073709551616",
           b" 1", b"1\n\n", b"-1", b"11"]
    for data in BAD:
        before_cells = cells()
        e = write_errno(f"{D}/reset", data)
        after_cells = cells()
        kept = all(after_cells[k][x] >= before_cells[k][x] for k in before_cells for x in cpus)
        c.check(f"reset <- {data[:24]!r}{'...' if len(data) > 24 else ''}: EINVAL, counters kept",
                e == errno.EINVAL and kept, f"errno {e}, kept {kept}")
    before_cells = cells()
    e = write_errno(f"{D}/reset", b"1", offset=1)
    c.check("reset <- '1' with pwrite: refused (seq_file has no pwrite), counters kept",
            e != 0 and all(cells()[k][x] >= before_cells[k][x] for k in before_cells for x in cpus),
            f"errno {e}")
    before_cells = cells()
    e = write_errno(f"{D}/reset", b"1", seek=1)
    c.check("reset <- '1' after lseek to 1: EINVAL, counters kept",
            e == errno.EINVAL and all(cells()[k][x] >= before_cells[k][x] for k in before_cells for x in cpus),
            f"errno {e}")
    c.check("bad reset input is logged", f"{PREFIX}reset: expected" in dmesg())
    # The log of bad writes is rate-limited (10 lines per 5 s): a burst of them cannot flood the kernel
    # log, and after a pause of one interval it logs again.
    time.sleep(5.5)
    logged = dmesg_count(f"{PREFIX}reset: expected")
    errs = [write_errno(f"{D}/reset", b"2") for _ in range(100)]
    logged = dmesg_count(f"{PREFIX}reset: expected") - logged
    c.check(f"100 malformed writes to reset in a burst: each EINVAL, 1 to 20 logged ({logged} lines)",
            all(e == errno.EINVAL for e in errs) and 1 <= logged <= 20,
            f"errnos {sorted(set(errs))}, {logged} new '{PREFIX}reset: expected' lines")

    t0 = totals()
    e = write_errno(f"{D}/reset", b"1\n")
    t1 = totals()
    c.check(f"reset <- '1\\n' zeroes the counters (total {sum(t0.values())} -> {sum(t1.values())})",
            e == 0 and sum(t0.values()) >= 1000 and sum(t1.values()) < sum(t0.values()) // 20, f"errno {e}")
    e = write_errno(f"{D}/reset", b"1")
    c.check("reset <- '1' (no newline) accepted", e == 0, f"errno {e}")

    # --- Unload while the load runs --------------------------------------------------------------------
    symbols = module_symbols()
    bg = [subprocess.Popen([load, "pingpong", "0", "1", "1000000"], stdout=subprocess.DEVNULL),
          subprocess.Popen([load, "pingpong", "2", "3", "1000000"], stdout=subprocess.DEVNULL),
          subprocess.Popen([load, "membarrier", "100000000"], stdout=subprocess.DEVNULL)]
    time.sleep(1.0)
    rm = run(["rmmod", "resched_probe"])
    still = [p.poll() is None for p in bg]
    for p in bg:
        p.kill()
        p.wait()
    c.check("rmmod under load succeeds (load still running at the time)", rm.returncode == 0 and all(still),
            rm.stderr)
    kp_list = read("/sys/kernel/debug/kprobes/list")
    left = [s for s in symbols if s in kp_list]
    c.check("no kprobe of ours left in /sys/kernel/debug/kprobes/list", not left, kp_list)
    c.check("no debugfs entry left", not os.path.exists(D))
