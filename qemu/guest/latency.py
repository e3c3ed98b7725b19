# SPDX-License-Identifier: GPL-2.0
"""Latency and receive-side checks, run with the module loaded: `received` against /proc/interrupts
(counted by the kernel's own IPI handlers), `latency/ipi` and `latency/resched` against bpftrace
measuring the same intervals its own way in the same window, the ordering facts under real load,
`latency_enable`, reset, and bad input."""

import os
import re
import signal
import subprocess
import time

from lib import (D, lazy_fair, online_cpus, rt_kernel, resched_function, testmod_layout, res_load, parse_table, proc_interrupts, read,
                 run, ttwu_queue, write_errno)

N_PING = 1500
N_MB = 300

# The same intervals measured by bpftrace, its own way: send times kept in BPF maps keyed by (kind,
# target), the call-function mask read from native_send_call_func_ipi's argument (a kprobe, where the
# module uses the ipi_send_cpumask tracepoint), the runqueue's CPU learned from pick_next_task_fair(rq)
# running on it (the module reads rq->cpu), nsecs (the clock the module reads) and hist(). Ended
# intervals are set to 0, never deleted: a map whose keys churn while bpftrace prints or clears it at
# exit can keep it iterating (it did not exit within 120 s).
BPFTRACE = r"""
kprobe:pick_next_task_fair { @rqcpu[arg0] = cpu + 1; }
tracepoint:ipi:ipi_send_cpu /args->callback == 0/ {
  if (@p[0, args->cpu] == 0) { @p[0, args->cpu] = nsecs; }
}
tracepoint:ipi:ipi_send_cpu /args->callback != 0 && args->cpu != cpu/ {
  if (@p[1, args->cpu] == 0) { @p[1, args->cpu] = nsecs; }
}
kprobe:native_send_call_func_ipi {
  $m = *(uint64 *)arg0;
  $i = 0;
  unroll(8) {
    if ((($m >> $i) & 1) && @p[2, $i] == 0) { @p[2, $i] = nsecs; }
    $i = $i + 1;
  }
}
tracepoint:irq_vectors:reschedule_entry /@p[0, cpu]/ {
  if (@on) { @RES = hist(nsecs - @p[0, cpu]); } @p[0, cpu] = 0;
}
tracepoint:irq_vectors:call_function_single_entry /@p[1, cpu]/ {
  if (@on) { @CFS = hist(nsecs - @p[1, cpu]); } @p[1, cpu] = 0;
}
tracepoint:irq_vectors:call_function_entry /@p[2, cpu]/ {
  if (@on) { @CFM = hist(nsecs - @p[2, cpu]); } @p[2, cpu] = 0;
}
kprobe:resched_curr /@rqcpu[arg0]/ {
  $t = @rqcpu[arg0] - 1;
  if (@r[$t] == 0) { @r[$t] = nsecs; @rremote[$t] = ($t != cpu); }
}
tracepoint:sched:sched_switch /@r[cpu]/ {
  if (@on) {
    if (@rremote[cpu]) { @remote = hist(nsecs - @r[cpu]); } else { @local = hist(nsecs - @r[cpu]); }
  }
  @r[cpu] = 0;
}
"""


# BPFTRACE with its reschedule requests probed where they all go through, and the runqueue's CPU learned
# from the fair class's pick on it: pick_next_task_fair (6.12), or pick_task_fair where the former is
# inlined (7.x: __pick_next_task() calls it on its own runqueue).
#
# Where the module counts reschedule requests from sched_set_need_resched_tp (7.x: `layout`, the test
# module's offsets, given), a request is one that sets the flag anew, and each one starts the interval
# anew, as in the module: __resched_curr() when the runqueue's current task's immediate flag is clear
# (read through the offsets; lazy requests are not told apart here: with lazy preemption the lazy flag
# would count too), and every __trace_set_need_resched() (called only for a flag set anew, on its CPU).
BPFTRACE_RESCHED_ANEW = r"""
kprobe:__resched_curr /@rqcpu[arg0]/ {
  $t = @rqcpu[arg0] - 1;
  $flags = *(uint64 *)(*(uint64 *)(arg0 + RQ_CURR));
  if (($flags & NR_MASK) == 0) { @r[$t] = nsecs; @rremote[$t] = ($t != cpu); }
}
kprobe:__trace_set_need_resched { @r[cpu] = nsecs; @rremote[cpu] = 0; }
"""


def bpftrace_program(layout=None):
    names = {l.split()[2] for l in read("/proc/kallsyms").splitlines() if l.endswith("_task_fair")}
    pick = "pick_next_task_fair" if "pick_next_task_fair" in names else "pick_task_fair"
    prog = BPFTRACE.replace("kprobe:pick_next_task_fair ", f"kprobe:{pick} ")
    if layout:
        first = prog.index("kprobe:resched_curr ")
        end = prog.index("\n}\n", first) + 3
        anew = (BPFTRACE_RESCHED_ANEW.replace("RQ_CURR", str(layout["rq_curr"]))
                .replace("NR_MASK", str(1 << layout["tif_need_resched"])))
        return prog[:first] + anew.lstrip("\n") + prog[end:]
    return prog.replace("kprobe:resched_curr ", f"kprobe:{resched_function()} ")


# The test records from just after its reset to just after its reads: each getppid() of this process
# turns recording on or off (bpftrace's own probe patching at attach and exit sends call-function IPIs
# outside the module's window). The benchmark records from the start.
WINDOW = "kprobe:__x64_sys_getppid /pid == $1/ { @on = !@on; }\n"
ALWAYS = "BEGIN { @on = 1; }\n"

# Attached tasks (every rrp-load process of the test is attached, and no other task has that name), as
# bpftrace measures them from the scheduler's tracepoints: the wakeup (sched_wakeup, forgotten when the
# task switches out before running again) to the switch in, and the time on a CPU per slice by how it
# ended (sched_switch's prev_state: 0, or 0x100 when preempted, is "still runnable").
BPFTRACE_TASKS = r"""
tracepoint:sched:sched_wakeup /args->comm == "rrp-load"/ { @w[args->pid] = nsecs; }
tracepoint:sched:sched_switch /args->prev_comm == "rrp-load"/ {
  @w[args->prev_pid] = 0;
  if (@in[args->prev_pid]) {
    if (@on) {
      if (args->prev_state == 0 || args->prev_state == 0x100) { @preempted = hist(nsecs - @in[args->prev_pid]); }
      else { @blocked = hist(nsecs - @in[args->prev_pid]); }
    }
    @in[args->prev_pid] = 0;
  }
}
tracepoint:sched:sched_switch /args->next_comm == "rrp-load"/ {
  @in[args->next_pid] = nsecs;
  if (@w[args->next_pid]) {
    if (@on) { @wakeup = hist(nsecs - @w[args->next_pid]); }
    @w[args->next_pid] = 0;
  }
}
"""

HIST_LINE = re.compile(r"^\[(\d+)([KMGTP]?)(?:, (\d+)([KMGTP]?)|, \.\.\.)?\)?\]?\s+(\d+) \|")
SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


def parse_hists(text):
    """{name: {low bound: count}} from bpftrace-style `@name:` blocks of histogram lines."""
    hists, current = {}, None
    for line in text.splitlines():
        m = re.match(r"^@(\w+):", line)
        if m:
            current = hists.setdefault(m.group(1), {})
            continue
        m = HIST_LINE.match(line)
        if m and current is not None:
            current[int(m.group(1)) * SUFFIX[m.group(2)]] = int(m.group(5))
        elif not line.strip():
            current = None
    return hists


def summary(text, name):
    """The `count` of the `@name:` summary line of a module file."""
    m = re.search(rf"^@{name}: count (\d+)", text, re.M)
    return int(m.group(1)) if m else None


def count(h):
    return sum(h.values())


def median_low(h):
    """The low bound of the bucket holding the median."""
    total, seen = count(h), 0
    for low in sorted(h):
        seen += h[low]
        if 2 * seen >= total:
            return low
    return None


def within_one_bucket(a, b):
    """Whether two bucket low bounds are the same or neighbours."""
    if a is None or b is None:
        return False
    lo, hi = sorted((max(a, 1), max(b, 1)))
    return hi <= 2 * lo


def table(text):
    """The per-CPU table of a latency file: it starts at the line of `CPU<n>` headers."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.split() and all(re.fullmatch(r"CPU\d+", w) for w in line.split()):
            return parse_table("\n".join(lines[i:]))
    return [], {}


def quiet_offsets(tries=200):
    """/proc/interrupts minus `received`, RES and CAL per CPU, read while no IPI arrived (the same
    /proc/interrupts before and after reading `received`); None if never quiet."""
    for _ in range(tries):
        p1 = proc_interrupts()
        r = parse_table(read(f"{D}/received"))[1]
        p2 = proc_interrupts()
        if all(p1[k] == p2[k] for k in ("RES", "CAL")):
            return {k: {c: p1[k][c] - r[k][c] for c in r[k]} for k in ("RES", "CAL")}, r
        time.sleep(0.01)
    return None, None


def loads(g):
    """Busy ping-pong on CPUs 0-1 (reschedule IPIs), idle ping-pong on 2-3 (call-function-single IPIs),
    then membarrier from CPU 0 (call-function IPIs)."""
    ps = [subprocess.Popen(res_load(g.load, 0, 1, N_PING), stdout=subprocess.DEVNULL),
          subprocess.Popen([g.load, "pingpong", "2", "3", str(N_PING)], stdout=subprocess.DEVNULL)]
    ok = all(p.wait(timeout=600) == 0 for p in ps)
    return ok and run([g.load, "membarrier", str(N_MB)]).returncode == 0


def received_over_load(c, g, cpus, show=("received",)):
    """Runs `loads` between two quiet readings of `received` and /proc/interrupts (printing the files of
    `show` after it) and checks that the load ran: (offsets before, offsets after, `received` per kind and
    CPU over the load), or None when no quiet moment came (counted as a failed check)."""
    before, r0 = quiet_offsets()
    ok = loads(g)
    after, r1 = quiet_offsets()
    for name in show:
        print(read(f"{D}/{name}"))
    c.check("load ran (busy and idle ping-pong, membarrier)", ok)
    if before is None or after is None:
        c.not_ok("received vs /proc/interrupts: a quiet moment to read them", "never quiet")
        return None
    got = {k: {x: r1[k][x] - r0[k][x] for x in cpus} for k in ("RES", "CAL")}
    print(f"# received over the load: RES {[got['RES'][x] for x in cpus]}, CAL {[got['CAL'][x] for x in cpus]}")
    return before, after, got


def procs_of(parent):
    """{pid: (policy, cpus)} of `parent` and its children, from /proc (policy 5 is SCHED_IDLE)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = read(f"/proc/{d}/stat")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(d) == parent or int(fields[1]) == parent:
            try:
                out[int(d)] = (int(fields[38]), sorted(os.sched_getaffinity(int(d))))
            except OSError:
                pass
    return out


def bpftrace_window(prog):
    """bpftrace running `prog`, recording while this process toggles it with getppid()."""
    bpf = subprocess.Popen(["bpftrace", "-e", WINDOW + prog, str(os.getpid())], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    seen = []
    for _ in range(20):  # warnings may come first
        line = bpf.stdout.readline()
        seen.append(line)
        if not line or "Attaching" in line:
            break
    return bpf, "Attaching" in seen[-1], "".join(seen)


def bpftrace_end(bpf):
    # 300 s: 180 were not enough once, the attached tasks' program on 6.12 beside two other guests and a
    # kernel build on 2 cores (2026-12-05); the same program exits in seconds on a quiet host.
    bpf.send_signal(signal.SIGINT)
    try:
        out, _ = bpf.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        bpf.kill()
        out, _ = bpf.communicate()
        out = "bpftrace did not exit within 300 s of SIGINT\n" + out
    return out


def attached(c, g):
    """Wakeup-to-run, slices and preempted-by of attached tasks: a busy ping-pong on CPUs 0-1, every
    process attached (the two ping-pong processes, and a SCHED_IDLE spinner on each CPU)."""
    bpf, ok, line = bpftrace_window(BPFTRACE_TASKS)
    c.check("bpftrace attached its probes (attached tasks)", ok, line)
    if not ok:
        return
    time.sleep(1.0)
    write_errno(f"{D}/reset", b"1")
    os.getppid()  # bpftrace: on
    n = 2 * N_PING
    p = subprocess.Popen([g.attach, g.load, "busypong", "0", "1", str(n)], stdout=subprocess.DEVNULL)
    # Midway, while every process lives (a task's rows go when it exits): who preempted whom.
    procs, by_text = {}, ""
    for _ in range(600):
        time.sleep(0.5)
        procs = procs_of(p.pid)
        by_text = read(f"{D}/preempted_by")
        counts = [int(l.split()[-1]) for l in by_text.splitlines()[1:] if l.split()[-1].isdigit()]
        if len(procs) == 4 and sum(counts) >= 500 or p.poll() is not None:
            break
    rc = p.wait(timeout=900)
    wake_text = read(f"{D}/latency/wakeup")
    slice_text = read(f"{D}/latency/slices")
    os.getppid()  # bpftrace: off
    out = bpftrace_end(bpf)
    print(by_text + wake_text + slice_text)
    print("# bpftrace:\n" + "\n".join(l for l in out.splitlines() if not l.startswith(("@w[", "@in["))))
    c.check("attached busy ping-pong ran", rc == 0)

    theirs = parse_hists(out)
    ours = {**parse_hists(wake_text), **parse_hists(slice_text)}
    for name in ("wakeup", "preempted", "blocked"):
        o, t = ours.get(name, {}), theirs.get(name, {})
        n_o, n_t, m_o, m_t = count(o), count(t), median_low(o), median_low(t)
        text = wake_text if name == "wakeup" else slice_text
        close = abs(n_o - n_t) <= 20 + max(n_o, n_t) // 20
        if rt_kernel() and n_t < n_o // 2:
            # See the IPI intervals above: on PREEMPT_RT this script agreed within 0.2% in one run and
            # recorded nothing in the next. Not an oracle there: not counted.
            print(f"# attached {name}: not checked: bpftrace saw {n_t} of the module's {n_o} "
                  "(PREEMPT_RT: it misses most of these events)")
            continue
        c.check(f"attached {name}: {n_o} measured, bpftrace {n_t}; median bucket {m_o} vs {m_t} (within one)",
                n_o >= N_PING and summary(text, name) == n_o and close and within_one_bucket(m_o, m_t))

    # Preempted by: each SCHED_IDLE spinner by the ping-pong process pinned to its CPU (the one woken
    # there), most often; nobody by the idle task (pid 0).
    rows = [l.split() for l in by_text.splitlines()[1:]]
    top, every = {}, {}
    for r in rows:
        if r[0].isdigit() and r[2].isdigit():
            top.setdefault(int(r[0]), int(r[2]))  # the first line of a task is its most frequent
            every.setdefault(int(r[0]), set()).add(int(r[2]))
    spinners = {pid: cpus for pid, (policy, cpus) in procs.items() if policy == 5}
    pingers = {tuple(cpus): pid for pid, (policy, cpus) in procs.items() if policy == 0}
    want = {pid: pingers.get(tuple(cpus)) for pid, cpus in spinners.items()}
    if rt_kernel():
        # On PREEMPT_RT the per-CPU threads (ktimers/N, ksoftirqd/N, rcuc/N, interrupt threads) preempt
        # the spinner at every tick and interrupt: more often than the lazily woken ping-pong.
        c.check(f"preempted_by: each SCHED_IDLE spinner by the ping-pong process on its CPU, among the "
                f"per-CPU threads of PREEMPT_RT (want {want}, got most often {top})",
                len(want) == 2 and all(w in every.get(s, ()) for s, w in want.items()), by_text)
    else:
        c.check(f"preempted_by: each SCHED_IDLE spinner most often by the ping-pong process on its CPU "
                f"(want {want}, got {top})", len(want) == 2 and all(top.get(s) == w for s, w in want.items()),
                by_text)
    c.check("preempted_by: the idle task never counts", not any(len(r) > 2 and r[2] == "0" for r in rows))


def main(c, g):
    cpus = online_cpus()
    for name in ("received", "latency/resched", "latency/ipi", "latency/wakeup", "latency/slices",
                 "preempted_by", "latency_enable"):
        c.check(f"{name} exists", os.path.exists(f"{D}/{name}"))
    cols, rows = parse_table(read(f"{D}/received"))
    c.check("received: one column per online CPU, rows RES CAL CFS CFM RCO CCO",
            cols == cpus and list(rows) == ["RES", "CAL", "CFS", "CFM", "RCO", "CCO"], read(f"{D}/received"))
    c.check("latency_enable is 1 at load", read(f"{D}/latency_enable") == "1\n")

    # --- received == /proc/interrupts, exactly, over a window with real load ----------------------------
    window = received_over_load(c, g, cpus)
    if window:
        before, after, got = window
        # The IPIs the load makes depend on the kernel (see ipi.py): none to the busy CPU where wakeup
        # preemption is lazy; reschedule IPIs, not call-function ones, to the idle CPU without TTWU_QUEUE.
        lazy, queued = lazy_fair(), ttwu_queue()
        busy = lazy or got["RES"][0] >= N_PING // 2
        idle = got["CAL"][2] >= N_PING // 2 if queued else got["RES"][2] >= N_PING // 4
        c.check("received RES and CAL moved by the same amount as /proc/interrupts on every CPU "
                f"(offsets {before} then {after}; load seen: busy CPU0 "
                f"{'lazy, not required' if lazy else got['RES'][0]}, idle CPU2 "
                f"{'CAL' if queued else 'RES'} {got['CAL' if queued else 'RES'][2]})",
                before == after and busy and idle)

    # --- Latencies against bpftrace, same window -------------------------------------------------------
    # RSC from the tracepoint (7.x): bpftrace counts the requests that set a flag anew, by the layout.
    rsc_tp = any(l.split()[0] == "RSC" and "via=tracepoint" in l for l in read(f"{D}/probes").splitlines())
    layout = testmod_layout(g.testmod) if rsc_tp else None
    if rsc_tp:
        c.check("the test module gave bpftrace's reschedule oracle its layout", bool(layout), str(layout))
    bpf, ok, line = bpftrace_window(bpftrace_program(layout))
    c.check("bpftrace attached its probes", ok, line)
    if ok:
        time.sleep(1.0)  # its runqueue map fills with every CPU's first switches
        write_errno(f"{D}/reset", b"1")
        os.getppid()  # bpftrace: on
        ok = loads(g)
        ipi_text = read(f"{D}/latency/ipi")
        rsc_text = read(f"{D}/latency/resched")
        os.getppid()  # bpftrace: off
        out = bpftrace_end(bpf)
        theirs = parse_hists(out)
        ours = {**parse_hists(ipi_text), **parse_hists(rsc_text)}
        print(ipi_text + rsc_text)
        print("# bpftrace:\n" + out)
        for name in ("RES", "CFS", "CFM", "local", "remote"):
            o, t = ours.get(name, {}), theirs.get(name, {})
            n_o, n_t = count(o), count(t)
            m_o, m_t = median_low(o), median_low(t)
            text = ipi_text if name in ("RES", "CFS", "CFM") else rsc_text
            # The script cannot tell lazy requests apart (BPFTRACE_RESCHED_ANEW): where there are some
            # (PREEMPT_RT, the lazy model), its local intervals are the module's local and lazy ones
            # together (7.3 RT, 2026-12-05: 1,358 + 3,682 against 4,970), and their medians differ.
            lazy = count(ours.get("lazy", {})) if name == "local" else 0
            both = n_o + lazy
            # bpftrace's window starts just after the reset and ends just after the reads.
            close = abs(both - n_t) <= 20 + max(both, n_t) // 20
            if rt_kernel() and n_t < both // 2:
                # Seen on 7.3 PREEMPT_RT (2026-12-04, two runs): bpftrace's kprobe and irq_vectors programs
                # record a fraction of a percent to a sixth of these intervals (its sched_switch script for
                # the attached tasks, below: within 0.2% in one run, nothing in the next). Not an oracle
                # there: not counted.
                print(f"# {name}: not checked: bpftrace saw {n_t} intervals of the module's {n_o} "
                      "(PREEMPT_RT: it misses most of these events)")
                continue
            if lazy:
                c.check(f"{name} + lazy: {n_o} + {lazy} intervals, bpftrace {n_t} (its local ones, lazy "
                        "among them; medians not compared)",
                        ok and n_o > 0 and summary(text, name) == n_o and close)
                continue
            c.check(f"{name}: {n_o} intervals, bpftrace {n_t}; median bucket {m_o} vs {m_t} (within one)",
                    ok and n_o > 0 and summary(text, name) == n_o and close and within_one_bucket(m_o, m_t))

        # Ordering facts from the same window: reschedule IPIs reached the busy CPUs 0-1, function-call
        # IPIs the idle CPUs 2-3 (wakelist wakeups) and CPUs 1-3 (membarrier from CPU 0); the spinners
        # on 0-1 were preempted, the idle tasks on 2-3 left for the woken ones.
        _, ipi_rows = table(ipi_text)
        _, rsc_rows = table(rsc_text)
        need = N_PING // 2
        # Which IPIs the load makes depends on the kernel (see ipi.py): none to the busy CPUs where wakeup
        # preemption is lazy; RES rather than CFS to the idle ones without TTWU_QUEUE.
        lazy, queued = lazy_fair(), ttwu_queue()
        facts = ([] if lazy else [("RN", 0), ("RN", 1)]) + [("SN" if queued else "RN", 2), ("SN" if queued else "RN", 3),
                                                            ("MN", 1), ("MN", 2), ("MN", 3)]
        c.check(f"latency/ipi per target (>= {need}; CFM >= {N_MB // 2}): "
                + ", ".join(f"{ {'RN': 'RES', 'SN': 'CFS', 'MN': 'CFM'}[k]} on CPU{x}" for k, x in facts)
                + ("; none required on busy CPUs 0-1 (lazy wakeup preemption)" if lazy else ""),
                all(ipi_rows.get(k, {}).get(x, 0) >= (need if k != "MN" else N_MB // 2) for k, x in facts),
                str(ipi_rows))
        c.check(f"latency/resched: requests on 0-1 ended by preemption, on 2-3 by the idle task leaving (>= {need})",
                all(rsc_rows.get("PRE", {}).get(x, 0) >= need for x in (0, 1))
                and all(rsc_rows.get("IDL", {}).get(x, 0) >= need for x in (2, 3)), str(rsc_rows))
        p50s = [rsc_rows.get("L50", {}).get(x, 0) for x in cpus]
        c.check(f"per-CPU p50 bounds are powers of two ({p50s})", all(v & (v - 1) == 0 for v in p50s))

    # --- latency_enable, reset, bad input ---------------------------------------------------------------
    def total_intervals():
        t = read(f"{D}/latency/ipi") + read(f"{D}/latency/resched")
        return sum(summary(t, n) or 0 for n in ("RES", "CFS", "CFM", "local", "remote"))

    errs = [write_errno(f"{D}/latency_enable", data) for data in
            (b"2", b"", b"on", b"1x", b"01", b"0 ", b"\n", b"-1")]
    c.check(f"bad writes to latency_enable: EINVAL each ({errs}), still 1",
            all(e == 22 for e in errs) and read(f"{D}/latency_enable") == "1\n")
    e = write_errno(f"{D}/latency_enable", b"0\n")
    n0, recv0 = total_intervals(), parse_table(read(f"{D}/received"))[1]["RES"]
    loads(g)
    n1, recv1 = total_intervals(), parse_table(read(f"{D}/received"))[1]["RES"]
    c.check(f"latency_enable 0: no interval recorded under load ({n0} -> {n1}), IPIs still counted as received",
            e == 0 and read(f"{D}/latency_enable") == "0\n" and n1 == n0 and recv1[0] > recv0[0]
            and "latency_enable is 0" in read(f"{D}/latency/resched"))
    e = write_errno(f"{D}/latency_enable", b"1")
    run([g.load, "busypong", "0", "1", "200"])
    n2 = total_intervals()
    c.check(f"latency_enable 1 again: intervals recorded ({n1} -> {n2})", e == 0 and n2 > n1 + 100)
    write_errno(f"{D}/reset", b"1")
    n3 = total_intervals()
    rec = parse_table(read(f"{D}/received"))[1]
    # What comes between the reset and the reads is counted again: a few intervals, more on PREEMPT_RT,
    # whose per-CPU threads are woken (a reschedule request each) at every tick.
    c.check(f"reset empties the histograms ({n2} -> {n3}, at most {50 + n2 // 100}) and the received counts "
            "with the counters",
            n3 < 50 + n2 // 100 and sum(rec["RES"].values()) + sum(rec["CAL"].values()) < 50)

    # --- Attached tasks ---------------------------------------------------------------------------------
    attached(c, g)
    for name in ("latency/wakeup", "latency/slices", "preempted_by"):
        c.check(f"{name} reads after the tasks exited", bool(read(f"{D}/{name}")))
