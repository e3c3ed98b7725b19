# SPDX-License-Identifier: GPL-2.0
"""The preemption models (issue 25), on a kernel built with PREEMPT_DYNAMIC: for every model the kernel
offers (/sys/kernel/debug/sched/preempt: 6.12 none, voluntary, full; 7.3 full, lazy), switched at run
time, the model `latency/resched` names, and the reschedule requests by kind under the same load (a
user-space spinner and a `dd` that spends its time in long read() calls, on one CPU), against kprobe
events on `resched_curr_lazy` (7.x): lazy requests only under `lazy`, where the tick promotes those that
`dd` holds in the kernel. Then the idle CPUs woken without an IPI (NIP) against the kernel's own
`sched:sched_wake_idle_without_ipi` event, per sender and target."""

import os
import re
import subprocess
import time

from lib import D, TRACING, parse_table, read, tracefs, write_errno

PREEMPT = "/sys/kernel/debug/sched/preempt"
CPU = 1


def table_of(text):
    """The table of a file that starts with comments and histograms (latency/*): its rows, from its
    `CPU<n>` header line on: {"LABEL": {cpu: count}}."""
    lines = text.splitlines()
    at = next((i for i, l in enumerate(lines) if l.split() and all(w.startswith("CPU") for w in l.split())), None)
    return parse_table("\n".join(lines[at:]))[1] if at is not None else {}


def models():
    """The models the kernel offers and the one in force, from its own file: ([names], current)."""
    text = read(PREEMPT).split()
    current = next((m.strip("()") for m in text if m.startswith("(")), None)
    return [m.strip("()") for m in text], current


def shown_model():
    """The model `latency/resched` names (`# preemption model: X ...`)."""
    m = re.search(r"^# preemption model: (\S+)", read(f"{D}/latency/resched"), re.M)
    return m.group(1) if m else None


def lazy_oracle(on):
    """A kprobe event on resched_curr_lazy (7.x) counted per CPU by a hist trigger; returns the counts
    when turned off."""
    trig = "hist:keys=common_cpu:size=64"
    if on:
        tracefs("kprobe_events", "p:rrp_lazy resched_curr_lazy\n", append=True)
        tracefs("events/kprobes/rrp_lazy/trigger", trig)
        return None
    hist = read(f"{TRACING}/events/kprobes/rrp_lazy/hist")
    tracefs("events/kprobes/rrp_lazy/trigger", "!" + trig)
    tracefs("kprobe_events", "-:rrp_lazy\n", append=True)
    return {int(m.group(1)): int(m.group(2))
            for m in re.finditer(r"common_cpu:\s*(\d+)\s*\}\s*hitcount:\s*(\d+)", hist)}


def contend(g):
    """A nice-0 spinner and a `dd` in long read() calls of /dev/zero share CPU: the scheduler asks
    for the CPU at the tick (slice ends) and at wakeups. Returns whether both ran."""
    spin = subprocess.Popen([g.load, "spin", str(CPU), "1500"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    started = spin.stdout.readline().strip() == "start"
    spin.stdin.write("go\n")
    spin.stdin.flush()
    dd = subprocess.run(["taskset", "-c", str(CPU), "dd", "if=/dev/zero", "of=/dev/null", "bs=8M", "count=24"],
                        capture_output=True, text=True, timeout=300)
    spin.wait(timeout=300)
    return started and dd.returncode == 0


def requests(g):
    """Resets, runs the contention with the lazy oracle on, and returns the `ipi` rows, the lazy
    histogram's count and the oracle's counts."""
    oracle = os.path.exists("/sys/kernel/tracing/available_filter_functions") and \
        "resched_curr_lazy" in read(f"{TRACING}/available_filter_functions")
    if oracle:
        lazy_oracle(True)
    write_errno(f"{D}/reset", b"1")
    ran = contend(g)
    rows = parse_table(read(f"{D}/ipi"))[1]
    lat = read(f"{D}/latency/resched")
    calls = lazy_oracle(False) if oracle else None
    m = re.search(r"^@lazy: count (\d+)", lat, re.M)
    return ran, rows, int(m.group(1)) if m else None, calls, lat


def main(c, g):
    if not os.path.exists(PREEMPT):
        print("# the models checks: not run (no /sys/kernel/debug/sched/preempt: this kernel has no "
              "PREEMPT_DYNAMIC)")
        return
    names, first = models()
    print(f"# preemption models offered: {' '.join(names)}; in force at boot: {first}")
    c.check(f"latency/resched names the model in force at boot ({first})", shown_model() == first,
            read(f"{D}/latency/resched")[:300])
    try:
        for model in names:
            tracefs_ok = True
            try:
                with open(PREEMPT, "w") as f:
                    f.write(model)
            except OSError:
                tracefs_ok = False
            _, now = models()
            c.check(f"{model}: switched at run time, and latency/resched names it",
                    tracefs_ok and now == model and shown_model() == model, f"kernel: {now}, module: {shown_model()}")
            ran, rows, lazy_hist, calls, lat = requests(g)
            rsl, rsp, rsc = (sum(rows.get(k, {}).values()) for k in ("RSL", "RSP", "RSC"))
            print(f"# {model}: RSC {rsc} RSL {rsl} RSP {rsp}, @lazy count {lazy_hist}, "
                  f"resched_curr_lazy calls {calls}")
            c.check(f"{model}: the contention ran (a spinner and dd on CPU {CPU})", ran)
            if model == "lazy":
                lazy_calls = (calls or {}).get(CPU, 0)
                on_cpu = rows.get("RSL", {}).get(CPU, 0)
                c.check(f"lazy: lazy requests made on CPU {CPU}, at most the resched_curr_lazy calls there "
                        f"({on_cpu} <= {lazy_calls})", 0 < on_cpu <= lazy_calls, str(rows))
                c.check("lazy: the tick promoted lazy requests dd held in the kernel (RSP > 0, PRO > 0)",
                        rsp > 0 and sum(table_of(lat).get("PRO", {}).values()) > 0, lat[-1200:])
                c.check("lazy: lazy requests measured in latency/resched (@lazy)", (lazy_hist or 0) > 0, lat[:600])
            else:
                c.check(f"{model}: every request immediate (RSL 0, RSP 0, @lazy 0) though resched_curr_lazy "
                        "ran" if calls is not None else f"{model}: every request immediate (RSL 0, RSP 0, @lazy 0)",
                        rsl == 0 and rsp == 0 and lazy_hist == 0 and (calls is None or sum(calls.values()) > 0),
                        f"RSL {rsl} RSP {rsp} @lazy {lazy_hist} calls {calls}")
    finally:
        with open(PREEMPT, "w") as f:
            f.write(first)

    # --- Idle CPUs woken without an IPI --------------------------------------------------------------
    trig = "hist:keys=common_cpu,cpu:size=256"
    tracefs("events/sched/sched_wake_idle_without_ipi/trigger", trig)
    write_errno(f"{D}/reset", b"1")
    pong = subprocess.run([g.load, "pingpong", "2", "3", "500"], capture_output=True, text=True, timeout=300)
    hist = read(f"{TRACING}/events/sched/sched_wake_idle_without_ipi/hist")
    tracefs("events/sched/sched_wake_idle_without_ipi/trigger", "!" + trig)
    pairs = read(f"{D}/pairs")
    ours = {(int(s), int(t)): int(n) for n, s, t in
            re.findall(r"^\s*(\d+)\s+NIP\s+CPU(\d+)\s+CPU(\d+)$", pairs, re.M)}
    kernel = {(int(s), int(t)): int(n) for s, t, n in
              re.findall(r"common_cpu:\s*(\d+),\s*cpu:\s*(\d+)\s*\}\s*hitcount:\s*(\d+)", hist)}
    # The module counts from its reset to its read, the kernel's event from just after the reset to
    # just before the read: ours may be ahead by what happened in between.
    bad = [f"{k}: ours {ours.get(k, 0)}, kernel {kernel.get(k, 0)}" for k in sorted(set(ours) | set(kernel))
           if not kernel.get(k, 0) <= ours.get(k, 0) <= kernel.get(k, 0) + 10 + kernel.get(k, 0) // 20]
    c.check(f"NIP per sender and target equals sched:sched_wake_idle_without_ipi over an idle ping-pong "
            f"({sum(ours.values())} counted, {sum(kernel.values())} events)",
            pong.returncode == 0 and not bad, "\n".join(bad) + "\n" + hist[-800:])
