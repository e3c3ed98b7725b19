# SPDX-License-Identifier: GPL-2.0
"""The counting engine (`make check`): which mechanism counts each tag, exact resets under load against
an oracle that does not share the module's mechanism, readings that never go backwards, and stack
settings that race the load without breaking `stack counts + dropped == hits`.

The oracle is tracefs kprobe events on the architecture's send functions (x86 `native_smp_send_reschedule`,
`native_send_call_func_single_ipi`, `native_send_call_func_ipi`; arm64 `arch_smp_send_reschedule`, ...)
and a kretprobe event on `ttwu_queue_wakelist` (a queued wakeup when it returns 1), read from the trace
buffer with the global clock: the module counts IPI sends from the `ipi:*` tracepoints and queued wakeups
from `csd:csd_queue_cpu`, so the two share nothing but the events themselves. RSC: where the module
counts it from `sched_set_need_resched_tp` (7.x), kprobe events on `__resched_curr(rq, tif)` that fetch
the runqueue's current task's flags, pid and `tif` (a request counts when it sets a flag anew, by the
kernel's own test; offsets from the test module's `layout`) and on `__trace_set_need_resched` (called
only for a flag set anew); where the module has a kprobe (6.12, the fallback-only build), the same kprobe
event on its symbol. The window of a reset is bracketed by two trace_marker
lines written just before and just after the reset; an event between the two may fall on either side.
"""

import errno
import re
import subprocess
import threading
import time

from lib import (ARG0, ARG1, STACKS, D, online_cpus, res_load, SEND_CFM, SEND_CFS, SEND_RES, TRACING, parse_matrix,
                 parse_table, read, testmod_layout, tracefs, ttwu_queue, write_errno)

# name: kprobe_events definition ("p:" at entry, "r:" at return).
EVENTS = {
    "rrp_res": f"p:rrp_res {SEND_RES} cpu={ARG0}:s32",
    "rrp_cfs": f"p:rrp_cfs {SEND_CFS} cpu={ARG0}:s32",
    "rrp_cfm": f"p:rrp_cfm {SEND_CFM}",
    "rrp_wkl": "r:rrp_wkl ttwu_queue_wakelist ret=$retval:u8",
}
# The oracle of the fallback-only build (`make fallback`), which counts with kprobes on the send
# functions and a kretprobe on ttwu_queue_wakelist: the kernel's own tracepoints, and the RSC events.
FALLBACK_TRACEPOINTS = ["ipi/ipi_send_cpu", "ipi/ipi_send_cpumask", "csd/csd_queue_cpu"]
# The RSC events' layout (rsc_events() sets it when the module counts RSC from the tracepoint).
RSC_LAYOUT = {}


def rsc_events(g, via, symbol):
    """The oracle's RSC events for how the module counts RSC (`via`, `symbol` from `probes`)."""
    if via != "tracepoint":
        return {"rrp_rsc": f"p:rrp_rsc {symbol}"}
    RSC_LAYOUT.clear()
    RSC_LAYOUT.update(testmod_layout(g.testmod) or {})
    if not RSC_LAYOUT:
        # No layout (the check below fails): every call, which overcounts.
        return {"rrp_rsc": "p:rrp_rsc __resched_curr"}
    o = RSC_LAYOUT
    curr = f"+{o['rq_curr']}({ARG0})"
    # `tif` is read only where a request can be lazy: elsewhere it is always TIF_NEED_RESCHED and the
    # compiler may have dropped the argument (layout's `lazy`).
    tif = f" tif={ARG1}:s32" if o["lazy"] else ""
    return {"rrp_rsc": f"p:rrp_rsc __resched_curr cpu=+{o['rq_cpu']}({ARG0}):s32 flags=+0({curr}):x64 "
                       f"pid=+{o['task_pid']}({curr}):s32{tif}",
            "rrp_rsct": "p:rrp_rsct __trace_set_need_resched"}


def rsc_anew(rest):
    """Whether an rrp_rsc event's request sets a flag anew (__resched_curr's own test: the idle task gets
    the immediate flag for a lazy request; nothing is set if the flag or the immediate one is)."""
    if "flags=" not in rest:
        return True
    f = {k: int(v, 0) for k, v in re.findall(r"(\w+)=(0x[0-9a-f]+|-?\d+)", rest)}
    nr, lazy = RSC_LAYOUT["tif_need_resched"], RSC_LAYOUT["tif_need_resched_lazy"]
    tif = f.get("tif", nr)
    tif = nr if f["pid"] == 0 and tif == lazy else tif
    return not f["flags"] & ((1 << tif) | (1 << nr))
N_PING = 1500
N_MB = 150


def oracle_on(events, fallback=False):
    tracefs("tracing_on", "0")
    tracefs("trace_clock", "global")
    tracefs("buffer_size_kb", "8192")
    for spec in events.values():
        tracefs("kprobe_events", spec + "\n", append=True)
    for name in events:
        tracefs(f"events/kprobes/{name}/enable", "1")
    for tp in FALLBACK_TRACEPOINTS if fallback else []:
        tracefs(f"events/{tp}/enable", "1")
    tracefs("trace", "")
    tracefs("tracing_on", "1")


def oracle_off(events):
    tracefs("tracing_on", "0")
    for name in events:
        try:
            tracefs(f"events/kprobes/{name}/enable", "0")
        except OSError:
            pass
    for tp in FALLBACK_TRACEPOINTS:
        tracefs(f"events/{tp}/enable", "0")
    tracefs("kprobe_events", "")
    tracefs("trace", "")


def marker(text):
    tracefs("trace_marker", text)


LINE = re.compile(r"\[(\d+)\].*?: (rrp_\w+|tracing_mark_write|ipi_send_cpu|ipi_send_cpumask|csd_queue_cpu): ?(.*)$")


def oracle_counts(trace, start, end):
    """Counts of the oracle's events between the markers `start` and `end` (None: from the beginning):
    {"RES": {(sender, target): n}, "CFS": {sender: n}, "CFM": {sender: n}, "RSC": {sender: n},
    "WKL": {sender: n}} (WKL: the calls of ttwu_queue_wakelist that returned 1)."""
    counts = {"RES": {}, "CFS": {}, "CFM": {}, "RSC": {}, "WKL": {}}
    inside = start is None
    for line in trace.splitlines():
        m = LINE.search(line)
        if not m:
            continue
        cpu, what, rest = int(m.group(1)), m.group(2), m.group(3)
        if what == "tracing_mark_write":
            if rest.strip() == start:
                inside = True
            elif rest.strip() == end:
                break
            continue
        if not inside:
            continue
        if what == "rrp_rsc" and not rsc_anew(rest):
            continue
        if what == "rrp_rsct":
            what = "rrp_rsc"
        if what == "rrp_res":
            target = int(re.search(r"cpu=(-?\d+)", rest).group(1))
            counts["RES"][(cpu, target)] = counts["RES"].get((cpu, target), 0) + 1
        elif what == "rrp_wkl":
            if int(re.search(r"ret=(\d+)", rest).group(1)) != 0:
                counts["WKL"][cpu] = counts["WKL"].get(cpu, 0) + 1
        elif what == "ipi_send_cpu":
            # RES: no callback; CFS: a callback, to another CPU (a self-IPI with one is irq_work's).
            target = int(re.search(r"cpu=(\d+)", rest).group(1))
            nil = re.search(r"callback=(0x0|\(nil\))(\s|$)", rest)
            if nil:
                counts["RES"][(cpu, target)] = counts["RES"].get((cpu, target), 0) + 1
            elif target != cpu:
                counts["CFS"][cpu] = counts["CFS"].get(cpu, 0) + 1
        elif what == "ipi_send_cpumask":
            counts["CFM"][cpu] = counts["CFM"].get(cpu, 0) + 1
        elif what == "csd_queue_cpu":
            if re.search(r"func=sched_ttwu_pending(\s|$)", rest):
                counts["WKL"][cpu] = counts["WKL"].get(cpu, 0) + 1
        else:
            kind = what[4:].upper()
            counts[kind][cpu] = counts[kind].get(cpu, 0) + 1
    return counts


def module_counts():
    """The module's RES (sender, target), CFS, CFM, RSC and WKL per sender, read in this process."""
    ipi = parse_table(read(f"{D}/ipi"))[1]
    mat = parse_matrix(read(f"{D}/matrix"))
    res = {(s, t): n for s, row in mat["RES"].items() for t, n in row.items()}
    return {"RES": res, "CFS": ipi["CFS"], "CFM": ipi["CFM"], "RSC": ipi["RSC"], "WKL": ipi["WKL"]}


def stack_sums():
    """Whether, per tag, the window's stack counts + dropped == hits (for WKL, the queued wakeups of the
    WKL row), each tag's stack table read between two readings of the hits that agree for that tag (the
    system's own activity keeps some tag moving: requiring all five still at once failed on a busy host)."""
    def hits():
        probes = {l.split()[0]: int(re.search(r"hits=(\d+)", l).group(1))
                  for l in read(f"{D}/probes").splitlines()}
        probes["WKL"] = sum(parse_table(read(f"{D}/ipi"))[1]["WKL"].values())
        return probes
    bad = []
    # A handler counts its hit, then records its stack: at any instant the stacks trail the hits by at most
    # the handlers in between, one per context (task, softirq, hard interrupt, NMI) on each CPU.
    in_flight = 4 * len(online_cpus())
    for tag in hits():
        for _ in range(50):
            before = hits()[tag]
            text = read(f"{D}/stacks/{tag}")
            after = hits()[tag]
            if after == before:
                break
            time.sleep(0.05)
        dropped = int(re.search(r"(\d+) dropped", text).group(1))
        counted = sum(int(n) for n in re.findall(r"^    (\d+) hits on CPUs", text, re.M))
        if after == before and counted + dropped != before:
            bad.append(f"{tag}: stacks {counted} + dropped {dropped} != hits {before}")
        elif after != before and not before - in_flight <= counted + dropped <= after:
            # Never still (PREEMPT_RT's per-CPU threads make reschedule requests at every tick): the
            # stacks, read between two readings of the hits, lie between them.
            bad.append(f"{tag}: stacks {counted} + dropped {dropped} not within hits {before} - {in_flight}..{after}")
        elif after != before:
            print(f"# {tag}: hits kept moving; stacks {counted} + dropped {dropped} within hits {before}..{after}")
    return not bad, "\n".join(bad)


def start_load(g):
    return [subprocess.Popen(res_load(g.load, 0, 1, N_PING), stdout=subprocess.DEVNULL),
            subprocess.Popen([g.load, "pingpong", "2", "3", str(N_PING)], stdout=subprocess.DEVNULL),
            subprocess.Popen([g.load, "membarrier", str(N_MB)], stdout=subprocess.DEVNULL)]


def hammer(path, values, stop, done):
    """Writes `values` in turn to `path` until `stop` is set; counts the writes and their errors."""
    i = 0
    while not stop.is_set():
        e = write_errno(path, values[i % len(values)])
        done.append(e)
        i += 1


def fallback_main(c, g):
    """The fallback-only build (`make fallback`, loaded by check.py for this part): the same checks, with
    the kernel's tracepoints as the oracle of its kprobes and kretprobe."""
    main(c, g, fallback=True)


def main(c, g, fallback=False):
    # --- Which mechanism counts each tag ---------------------------------------------------------------
    via = {l.split()[0]: dict(kv.split("=") for kv in l.split()[3:]).get("via")
           for l in read(f"{D}/probes").splitlines()}
    symbols = {l.split()[0]: l.split()[1] for l in read(f"{D}/probes").splitlines()}
    queued = ttwu_queue()
    # Where the kernel has sched_set_need_resched_tp (kallsyms: its iterator), RSC comes from it.
    rsc_tp = "__traceiter_sched_set_need_resched_tp" in read("/proc/kallsyms")
    if fallback:
        c.check(f"fallback build: probes: RES, CFS, CFM kprobes on {SEND_RES}, {SEND_CFS}, {SEND_CFM}, RSC "
                "kprobe, WKL kretprobe on ttwu_queue_wakelist; callbacks not counted",
                via == {"RES": "kprobe", "CFS": "kprobe", "CFM": "kprobe", "RSC": "kprobe", "WKL": "kretprobe"}
                and [symbols[t] for t in ("RES", "CFS", "CFM", "WKL")] == [SEND_RES, SEND_CFS, SEND_CFM,
                                                                          "ttwu_queue_wakelist"]
                and read(f"{D}/callbacks").startswith("# no csd:csd_queue_cpu"),
                read(f"{D}/probes") + read(f"{D}/callbacks"))
    else:
        c.check("probes: RES and CFS via the ipi_send_cpu tracepoint, CFM via ipi_send_cpumask, RSC "
                + ("via sched_set_need_resched_tp" if rsc_tp else "kprobe") + ", WKL via the csd_queue_cpu tracepoint",
                via == {"RES": "tracepoint", "CFS": "tracepoint", "CFM": "tracepoint",
                        "RSC": "tracepoint" if rsc_tp else "kprobe", "WKL": "tracepoint"}
                and symbols["RES"] == symbols["CFS"] == "ipi_send_cpu" and symbols["WKL"] == "csd_queue_cpu"
                and (symbols["RSC"] == "sched_set_need_resched_tp") == rsc_tp,
                read(f"{D}/probes"))

    rsc = rsc_events(g, via["RSC"], symbols["RSC"])
    if via["RSC"] == "tracepoint":
        c.check("the test module gave the RSC oracle's layout", bool(RSC_LAYOUT), str(RSC_LAYOUT))
    events = {**({} if fallback else EVENTS), **rsc}

    # --- Readings never go backwards while no reset happens -----------------------------------------
    loads = start_load(g)
    back = []
    last = None
    for _ in range(40):
        now = parse_table(read(f"{D}/ipi"))[1]
        if last:
            back += [f"{k} CPU{x}: {last[k][x]} -> {now[k][x]}" for k in now for x in now[k]
                     if now[k][x] < last[k][x]]
        last = now
        time.sleep(0.02)
    for p in loads:
        p.wait(timeout=600)
    c.check("under load, 40 readings of ipi never go backwards", not back, "\n".join(back[:10]))

    # --- Resets and stack settings racing the load, then a reset racing the load against the oracle ---
    oracle_on(events, fallback)
    try:
        stop = threading.Event()
        resets, toggles, caps = [], [], []
        workers = [threading.Thread(target=hammer, args=(f"{D}/reset", [b"1"], stop, resets)),
                   threading.Thread(target=hammer, args=(f"{D}/reset", [b"1"], stop, resets)),
                   threading.Thread(target=hammer, args=(f"{D}/stacks_enable", [b"1", b"0"], stop, toggles)),
                   threading.Thread(target=hammer, args=(f"{D}/stacks_capacity", [b"512", b"256"], stop, caps))]
        loads = start_load(g)
        for w in workers:
            w.start()
        # 3 s, longer until each kind made more than 10 writes (a reset waits for grace periods: on a
        # busy host, or 7.x's SRCU beside RCU, a few per second), at most 30 s.
        deadline = time.time() + 30
        time.sleep(3)
        while time.time() < deadline and min(len(resets), len(toggles), len(caps)) <= 10:
            time.sleep(0.2)
        stop.set()
        for w in workers:
            w.join()
        # arm64 records no stacks: there "1" is refused (EOPNOTSUPP), "0" accepted.
        toggles_ok = set(toggles) == {0} if STACKS else set(toggles) == {0, errno.EOPNOTSUPP}
        c.check(f"{len(resets)} resets and {len(toggles)} stacks_enable writes raced the load, all accepted"
                + ("" if STACKS else " ('1' refused with EOPNOTSUPP on arm64)"),
                len(resets) > 10 and not any(resets) and len(toggles) > 10 and toggles_ok,
                f"reset errnos {set(resets)}, stacks_enable errnos {set(toggles)}")
        c.check(f"{len(caps)} stacks_capacity writes raced them: each accepted or EBUSY (recording on)",
                len(caps) > 10 and set(caps) <= {0, 16}, f"errnos {set(caps)}")
        # Recording on for the window under test, so that its stack tables can be checked too.
        write_errno(f"{D}/stacks_capacity", b"512")
        write_errno(f"{D}/stacks_enable", b"1")
        # The window under test starts with a reset while the load still runs.
        marker("RRP_BEFORE_RESET")
        e = write_errno(f"{D}/reset", b"1")
        marker("RRP_AFTER_RESET")
        for p in loads:
            p.wait(timeout=600)
        loads = start_load(g)
        for p in loads:
            p.wait(timeout=600)
        marker("RRP_READ")
        ours = module_counts()
        marker("RRP_END")
        probes_text = read(f"{D}/probes")
        stacks_ok, stacks_detail = stack_sums()
        write_errno(f"{D}/stacks_enable", b"0")
        trace = read(f"{TRACING}/trace")
        profile = read(f"{TRACING}/kprobe_profile")
    finally:
        oracle_off(events)
    c.check("the reset under load was accepted", e == 0, f"errno {e}")
    # kprobe_profile: name, hits, missed (a kprobe skips a hit that comes while another kprobe handler
    # runs on that CPU). A missed oracle event widens the bound by one.
    prof = {l.split()[0]: (int(l.split()[1]), int(l.split()[2])) for l in profile.splitlines()
            if l.split() and l.split()[0] in events}
    lost = {}
    for name, (_, m) in prof.items():
        kind = "RSC" if name.startswith("rrp_rsc") else name[4:].upper()
        lost[kind] = lost.get(kind, 0) + m
    c.check("the oracle's kprobe events missed at most 1 hit, plus 1 in 2,000, each",
            len(prof) == len(events) and all(m <= 1 + h // 2000 for h, m in prof.values())
            and "RRP_END" in trace, profile or trace[-2000:])
    # A hit the module's own kprobes missed (`missed=` in `probes`, counted since the load) widens the
    # lower bound by as much.
    ours_lost = {l.split()[0]: int(re.search(r"missed=(\d+)", l).group(1)) for l in probes_text.splitlines()}
    oracle = ("the tracepoint events (RSC: the kprobe event)" if fallback else "the kprobe events")
    if via["RSC"] == "tracepoint":
        oracle += " (RSC: flags set anew at __resched_curr, and __trace_set_need_resched)"
    low = oracle_counts(trace, "RRP_AFTER_RESET", "RRP_READ")
    high = oracle_counts(trace, "RRP_BEFORE_RESET", "RRP_END")
    # The markers and the window's switch are not one step with a hit: the oracle's half of a hit and
    # ours run back to back on the hit's CPU, but that vCPU may stall between them (the host runs other
    # guests) while CPU 0 writes a marker and switches the window. So each CPU may have one hit astride
    # each end of the window (seen in CI: WKL on 7.3's fallback build, the two kretprobes on
    # ttwu_queue_wakelist, ours one above the oracle's high bound on CPU 2). Keys are per sending CPU.
    astride = 2
    # Every tag the module offers, read from it (`probes`), each against its oracle.
    for kind in (l.split()[0] for l in probes_text.splitlines() if l.strip()):
        keys = set(low[kind]) | set(high[kind]) | {k for k, n in ours[kind].items() if n}
        bad = [f"{kind} {k}: ours {ours[kind].get(k, 0)}, oracle {low[kind].get(k, 0)}..{high[kind].get(k, 0)}"
               for k in sorted(keys)
               if not low[kind].get(k, 0) - ours_lost.get(kind, 0) - astride <= ours[kind].get(k, 0)
               <= high[kind].get(k, 0) + lost.get(kind, 0) + astride]
        total = sum(low[kind].values())
        # Without TTWU_QUEUE (PREEMPT_RT) no wakeup is queued: none may be counted.
        enough = total > 100 or kind == "CFM" or (kind == "WKL" and not queued and not sum(high[kind].values()))
        c.check(f"after a reset under load, {kind} per {'sender->target' if kind == 'RES' else 'sender'} "
                f"equals {oracle} in the same window, but for {astride} hits astride its ends per "
                f"{'pair' if kind == 'RES' else 'CPU'} ({sum(ours[kind].values())} counted, "
                f"oracle {total}..{sum(high[kind].values())}"
                f"{'; NO_TTWU_QUEUE: none queued' if kind == 'WKL' and not queued else ''})",
                not bad and enough, "\n".join(bad))

    if STACKS:
        c.check("after the racing toggles and a reset, the window's stack counts + dropped == hits for "
                "every tag", stacks_ok, stacks_detail)
    else:
        print("# stack counts + dropped == hits: not checked (no stacks on arm64)")
    write_errno(f"{D}/reset", b"1")
    if not fallback:
        callbacks_part(c, g)


def callbacks():
    """{function: {cpu: calls queued}} from `callbacks`."""
    text = read(f"{D}/callbacks")
    lines = text.splitlines()
    cpus = [int(x[3:]) for x in lines[0].split()]
    rows = {}
    for line in lines[1:]:
        f = line.split()
        if f and f[0] == "CSD:" and len(f) >= len(cpus) + 2:
            rows[" ".join(f[len(cpus) + 1:])] = dict(zip(cpus, map(int, f[1:len(cpus) + 1])))
    return rows


def callbacks_part(c, g):
    """`callbacks` against an independent count, `ipi_mb` queued by membarrier against kprobe events on
    `ipi_mb` itself (each queued call runs once on its target); and `sched_ttwu_pending` (the queued
    wakeups) against the WKL row, counted by the same csd_queue_cpu hit (the WKL row itself is checked
    against a kretprobe event on `ttwu_queue_wakelist` in main())."""
    tracefs("kprobe_events", "p:rrp_ipimb ipi_mb\n", append=True)
    tracefs("events/kprobes/rrp_ipimb/trigger", "hist:keys=common_cpu:size=128")
    try:
        write_errno(f"{D}/reset", b"1")
        mb = subprocess.run([g.load, "membarrier", str(N_MB)], capture_output=True, text=True)
        pp = subprocess.run([g.load, "pingpong", "2", "3", str(N_PING)], capture_output=True, text=True)
        for _ in range(50):
            wkl = parse_table(read(f"{D}/ipi"))[1]["WKL"]
            rows = callbacks()
            if parse_table(read(f"{D}/ipi"))[1]["WKL"] == wkl:
                break
        hist = read(f"{TRACING}/events/kprobes/rrp_ipimb/hist")
    finally:
        for name, text in (("events/kprobes/rrp_ipimb/trigger", "!hist:keys=common_cpu:size=128"),
                           ("kprobe_events", "")):
            try:
                tracefs(name, text)
            except OSError as e:
                print(f"# cleanup {name}: {e}")
    ran = sum(int(n) for n in re.findall(r"hitcount:\s*(\d+)", hist))
    mb_rows = rows.get("ipi_mb", {})
    print(f"# callbacks: {rows}")
    c.check(f"callbacks: membarrier's ipi_mb queued by CPU0 ({mb_rows.get(0, 0)}) equals its runs on the "
            f"targets counted by a kprobe event on ipi_mb ({ran}), and no other CPU queued it",
            mb.returncode == 0 and mb_rows.get(0, 0) == ran >= N_MB and sum(mb_rows.values()) == ran,
            f"{rows}\n{hist}")
    tw = rows.get("sched_ttwu_pending", {})
    if ttwu_queue():
        c.check(f"callbacks: sched_ttwu_pending queued per CPU equals the WKL row (queued wakeups, "
                f"{sum(wkl.values())}): one csd_queue_cpu hit counts both",
                pp.returncode == 0 and sum(wkl.values()) > N_PING // 2
                and all(tw.get(x, 0) == n for x, n in wkl.items()), f"callbacks {tw}\nWKL {wkl}")
    else:
        c.check(f"callbacks: NO_TTWU_QUEUE: the idle ping-pong queued no wakeup, neither as sched_ttwu_pending "
                f"({sum(tw.values())}) nor in the WKL row ({sum(wkl.values())})",
                pp.returncode == 0 and not sum(tw.values()) and not sum(wkl.values()), f"callbacks {tw}\nWKL {wkl}")
    c.check("callbacks names functions, never raw addresses",
            rows and not any(re.search(r"0x[0-9a-f]{8}", k) for k in rows), str(rows))
