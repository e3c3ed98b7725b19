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

from lib import D, online_cpus, parse_table, proc_interrupts, read, run, write_errno

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
# The test records from just after its reset to just after its reads: each getppid() of this process
# turns recording on or off (bpftrace's own probe patching at attach and exit sends call-function IPIs
# outside the module's window). The benchmark records from the start.
WINDOW = "kprobe:__x64_sys_getppid /pid == $1/ { @on = !@on; }\n"
ALWAYS = "BEGIN { @on = 1; }\n"

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
    ps = [subprocess.Popen([g.load, "busypong", "0", "1", str(N_PING)], stdout=subprocess.DEVNULL),
          subprocess.Popen([g.load, "pingpong", "2", "3", str(N_PING)], stdout=subprocess.DEVNULL)]
    ok = all(p.wait(timeout=600) == 0 for p in ps)
    return ok and run([g.load, "membarrier", str(N_MB)]).returncode == 0


def main(c, g):
    cpus = online_cpus()
    for name in ("received", "latency/resched", "latency/ipi", "latency_enable"):
        c.check(f"{name} exists", os.path.exists(f"{D}/{name}"))
    cols, rows = parse_table(read(f"{D}/received"))
    c.check("received: one column per online CPU, rows RES CAL CFS CFM RCO CCO",
            cols == cpus and list(rows) == ["RES", "CAL", "CFS", "CFM", "RCO", "CCO"], read(f"{D}/received"))
    c.check("latency_enable is 1 at load", read(f"{D}/latency_enable") == "1\n")

    # --- received == /proc/interrupts, exactly, over a window with real load ----------------------------
    before, r0 = quiet_offsets()
    ok = loads(g)
    after, r1 = quiet_offsets()
    c.check("load ran (busy and idle ping-pong, membarrier)", ok)
    if before is None or after is None:
        c.not_ok("received vs /proc/interrupts: a quiet moment to read them", "never quiet")
    else:
        got = {k: {x: r1[k][x] - r0[k][x] for x in cpus} for k in ("RES", "CAL")}
        print(f"# received over the load: RES {[got['RES'][x] for x in cpus]}, CAL {[got['CAL'][x] for x in cpus]}")
        c.check("received RES and CAL moved by the same amount as /proc/interrupts on every CPU "
                f"(offsets {before} then {after})", before == after and got["RES"][0] >= N_PING // 2
                and got["CAL"][2] >= N_PING // 2)

    # --- Latencies against bpftrace, same window -------------------------------------------------------
    bpf = subprocess.Popen(["bpftrace", "-e", WINDOW + BPFTRACE, str(os.getpid())], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    line = bpf.stdout.readline()
    attached = "Attaching" in line
    c.check("bpftrace attached its probes", attached, line)
    if attached:
        time.sleep(1.0)  # its runqueue map fills with every CPU's first switches
        write_errno(f"{D}/reset", b"1")
        os.getppid()  # bpftrace: on
        ok = loads(g)
        ipi_text = read(f"{D}/latency/ipi")
        rsc_text = read(f"{D}/latency/resched")
        os.getppid()  # bpftrace: off
        bpf.send_signal(signal.SIGINT)
        try:
            out, _ = bpf.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            bpf.kill()
            out, _ = bpf.communicate()
            out = "bpftrace did not exit within 180 s of SIGINT\n" + out
        theirs = parse_hists(out)
        ours = {**parse_hists(ipi_text), **parse_hists(rsc_text)}
        print(ipi_text + rsc_text)
        print("# bpftrace:\n" + out)
        for name in ("RES", "CFS", "CFM", "local", "remote"):
            o, t = ours.get(name, {}), theirs.get(name, {})
            n_o, n_t = count(o), count(t)
            m_o, m_t = median_low(o), median_low(t)
            text = ipi_text if name in ("RES", "CFS", "CFM") else rsc_text
            # bpftrace's window starts just after the reset and ends just after the reads.
            close = abs(n_o - n_t) <= 20 + max(n_o, n_t) // 20
            c.check(f"{name}: {n_o} intervals, bpftrace {n_t}; median bucket {m_o} vs {m_t} (within one)",
                    ok and n_o > 0 and summary(text, name) == n_o and close and within_one_bucket(m_o, m_t))

        # Ordering facts from the same window: reschedule IPIs reached the busy CPUs 0-1, function-call
        # IPIs the idle CPUs 2-3 (wakelist wakeups) and CPUs 1-3 (membarrier from CPU 0); the spinners
        # on 0-1 were preempted, the idle tasks on 2-3 left for the woken ones.
        _, ipi_rows = table(ipi_text)
        _, rsc_rows = table(rsc_text)
        need = N_PING // 2
        facts = [("RN", 0), ("RN", 1), ("SN", 2), ("SN", 3), ("MN", 1), ("MN", 2), ("MN", 3)]
        c.check(f"latency/ipi per target: RES measured on busy CPUs 0-1, CFS on idle 2-3 (>= {need}), CFM on 1-3",
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
    c.check(f"reset empties the histograms ({n2} -> {n3}) and the received counts with the counters",
            n3 < 50 and sum(rec["RES"].values()) + sum(rec["CAL"].values()) < 50)
