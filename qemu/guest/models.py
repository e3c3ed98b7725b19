# SPDX-License-Identifier: GPL-2.0
"""The preemption models (issue 25), on a kernel built with PREEMPT_DYNAMIC: for every model the kernel
offers (/sys/kernel/debug/sched/preempt: 6.12 none, voluntary, full; 7.3 full, lazy), switched at run
time, the model `latency/resched` names, and the reschedule requests by kind under the same load (a
user-space spinner and a `dd` that spends its time in long read() calls, on one CPU), against kprobe
events on `resched_curr_lazy` (7.x): lazy requests only under `lazy`, where the tick promotes those that
`dd` holds in the kernel. Then the idle CPUs woken without an IPI (NIP) per sender and target, against
kprobe events on call_function_single_prep_ipi() and the send that follows it."""

import os
import re
import subprocess
import time

from lib import ARG0, D, SEND_CFS, TRACING, parse_table, read, tracefs, write_errno

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
    trig = "hist:keys=common_cpu:size=128"
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
    # It prints `done` when its time is over, then waits for a signal.
    finished = spin.stdout.readline().strip() == "done"
    spin.terminate()
    spin.wait(timeout=60)
    return started and finished and dd.returncode == 0


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


# The measured table (issue 25): a waker that sleeps WAKE_US WAKES times on CPU, beside a hog there.
WAKES, WAKE_US = 200, 5000


def hog(kind):
    """A CPU hog on CPU: `user` a shell loop in user space, `kernel` a `dd` in long read() calls."""
    cmd = (["sh", "-c", "while :; do :; done"] if kind == "user"
           else ["dd", "if=/dev/zero", "of=/dev/null", "bs=8M"])
    return subprocess.Popen(["taskset", "-c", str(CPU)] + cmd, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def switches(pid):
    """(voluntary, nonvoluntary) context switches of pid, from /proc/<pid>/status."""
    text = read(f"/proc/{pid}/status")
    get = lambda key: int(re.search(rf"^{key}:\s*(\d+)", text, re.M).group(1))
    return get("voluntary_ctxt_switches"), get("nonvoluntary_ctxt_switches")


def cell(rows, kind):
    """`p50 / p99 (n)` of a latency table's kind (L, R, Z, W) on CPU, in us (the buckets' upper bounds)."""
    n = rows.get(f"{kind}N", {}).get(CPU, 0)
    if not n:
        return "-"
    us = lambda v: f"{v / 1000:.0f}" if v >= 10000 else f"{v / 1000:.1f}"
    return f"{us(rows[f'{kind}50'][CPU])} / {us(rows[f'{kind}99'][CPU])} ({n})"


def measure(g, kind):
    """One row of the models table under the model in force: the hog of `kind` and an attached waker on
    CPU, from a reset to the waker's last wakeup. None if the waker did not run through."""
    h = hog(kind)
    waker = subprocess.Popen(["sh", "-c", f"echo attach > {D}/attach && exec taskset -c {CPU} {g.load} sleeper "
                              f"{WAKES} {WAKE_US}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                             start_new_session=True)
    try:
        started = waker.stdout.readline().strip() == "start"
        time.sleep(0.2)
        s0 = switches(h.pid)
        write_errno(f"{D}/reset", b"1")
        waker.stdin.write("go\n")
        waker.stdin.flush()
        finished = waker.stdout.readline().strip() == "done"
        ipi = parse_table(read(f"{D}/ipi"))[1]
        lat, wake = table_of(read(f"{D}/latency/resched")), table_of(read(f"{D}/latency/wakeup"))
        s1 = switches(h.pid)
    finally:
        for p in (h, waker):
            os.killpg(p.pid, 9)
            p.wait()
    if not (started and finished):
        return None
    total = lambda k: sum(ipi.get(k, {}).values())
    return {"load": kind, "RSC": total("RSC"), "RSL": total("RSL"), "RSP": total("RSP"),
            "hog": f"{s1[1] - s0[1]} / {s1[0] - s0[0]}", "local": cell(lat, "L"), "remote": cell(lat, "R"),
            "lazy": cell(lat, "Z"), "waker": cell(wake, "W"),
            "waker_n": wake.get("WN", {}).get(CPU, 0)}


def print_table(kernel, rows):
    """The models table as the README shows it (markdown)."""
    print(f"# the preemption models side by side ({kernel}; CPU {CPU}: a hog and a waker sleeping "
          f"{WAKE_US} us {WAKES} times; latencies p50 / p99 (count) in us, the upper bounds of their buckets)")
    print("| model | hog | requests (RSC) | lazy (RSL) | promoted (RSP) | hog preempted / voluntary | "
          "resched -> switch, local | remote | lazy | waker wakeup -> run |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for model, r in rows:
        print(f"| {model} | {r['load']} | {r['RSC']} | {r['RSL']} | {r['RSP']} | {r['hog']} | {r['local']} | "
              f"{r['remote']} | {r['lazy']} | {r['waker']} |")


def fixed_model(c, g):
    """A kernel without PREEMPT_DYNAMIC (the PREEMPT_RT build): its one model, named by the kernel's
    version string, and its row of the models table."""
    version = os.uname().version
    expect = "rt" if "PREEMPT_RT" in version else None
    print(f"# no /sys/kernel/debug/sched/preempt (no PREEMPT_DYNAMIC): one model; uname -v: {version}")
    shown = shown_model()
    c.check(f"latency/resched names the model this kernel was built with ({expect or 'from uname -v'}: {shown})",
            shown == expect if expect else shown is not None, read(f"{D}/latency/resched")[:300])
    ran, rows, lazy_hist, calls, lat = requests(g)
    rsl, rsp = (sum(rows.get(k, {}).values()) for k in ("RSL", "RSP"))
    print(f"# {shown}: RSC {sum(rows.get('RSC', {}).values())} RSL {rsl} RSP {rsp}, @lazy count {lazy_hist}, "
          f"resched_curr_lazy calls {calls}")
    c.check(f"{shown}: the contention ran (a spinner and dd on CPU {CPU})", ran)
    measured = [(shown, kind, measure(g, kind)) for kind in ("user", "kernel")]
    short = [f"{k}: {r and r['waker_n']}" for _, k, r in measured if not r or r["waker_n"] < WAKES * 9 // 10]
    c.check(f"models table ({shown}): with either hog on CPU {CPU}, the attached waker ran through and >= 90% "
            f"of its {WAKES} wakeups were measured", not short, str(short))
    print_table(os.uname().release, [(m, r) for m, _, r in measured if r])


def main(c, g):
    if not os.path.exists(PREEMPT):
        fixed_model(c, g)
        return
    names, first = models()
    print(f"# preemption models offered: {' '.join(names)}; in force at boot: {first}")
    c.check(f"latency/resched names the model in force at boot ({first})", shown_model() == first,
            read(f"{D}/latency/resched")[:300])
    measured = []
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
            for kind in ("user", "kernel"):
                measured.append((model, kind, measure(g, kind)))
    finally:
        with open(PREEMPT, "w") as f:
            f.write(first)
    short = [f"{m} {k}: {r and r['waker_n']}" for m, k, r in measured if not r or r["waker_n"] < WAKES * 9 // 10]
    c.check(f"models table: under every model, with either hog on CPU {CPU}, the attached waker ran through "
            f"and >= 90% of its {WAKES} wakeups were measured", measured and not short, str(short))
    print_table(os.uname().release, [(m, r) for m, _, r in measured if r])

    idle_without_ipi(c, g)


def idle_without_ipi(c, g):
    """Idle CPUs woken without an IPI. The oracle shares nothing with the module's tracepoint: kprobe
    events on the function that decides (call_function_single_prep_ipi(cpu), which returns false, sending
    nothing, for a polling idle CPU) and on the x86 send that follows when it returns true; their
    difference per sender and target is the call-function IPIs not needed. The module's NIP also counts
    resched_curr()'s (a remote reschedule of a polling idle CPU), which the idle ping-pong's wakelist
    wakeups rarely make. The kprobes' histograms are read four times, all in this process: an outer
    window from before the module's reset to after its read, and an inner one from after the reset to
    before the read; ours lies between the two (a decision and its send may fall on either side of a
    reading: 2), and may be ahead of the outer by resched_curr()'s."""
    probes = {"rrp_prep": f"call_function_single_prep_ipi cpu={ARG0}:s32",
              "rrp_scfs": f"{SEND_CFS} cpu={ARG0}:s32"}
    trig = "hist:keys=common_cpu,cpu:size=256"
    for name, spec in probes.items():
        tracefs("kprobe_events", f"p:{name} {spec}\n", append=True)
        tracefs(f"events/kprobes/{name}/trigger", trig)

    def hists():
        return {name: read(f"{TRACING}/events/kprobes/{name}/hist") for name in probes}
    outer0 = hists()
    write_errno(f"{D}/reset", b"1")
    inner0 = hists()
    pong = subprocess.run([g.load, "pingpong", "2", "3", "500"], capture_output=True, text=True, timeout=300)
    inner1 = hists()
    pairs = read(f"{D}/pairs")
    outer1 = hists()
    for name in probes:
        tracefs(f"events/kprobes/{name}/trigger", "!" + trig)
        tracefs("kprobe_events", f"-:{name}\n", append=True)
    ours = {(int(s), int(t)): int(n) for n, s, t in
            re.findall(r"^\s*(\d+)\s+NIP\s+CPU(\d+)\s+CPU(\d+)$", pairs, re.M)}

    def per(h):
        return {(int(s), int(t)): int(n) for s, t, n in
                re.findall(r"common_cpu:\s*(\d+),\s*cpu:\s*(\d+)\s*\}\s*hitcount:\s*(\d+)", h)}

    def kernel(h0, h1):
        """Decisions less sends per (sender, target) between two readings."""
        p0, p1, s0, s1 = per(h0["rrp_prep"]), per(h1["rrp_prep"]), per(h0["rrp_scfs"]), per(h1["rrp_scfs"])
        out = {k: p1.get(k, 0) - p0.get(k, 0) - (s1.get(k, 0) - s0.get(k, 0)) for k in set(p1) | set(s1)}
        return {k: v for k, v in out.items() if v}
    inner, outer = kernel(inner0, inner1), kernel(outer0, outer1)
    bad = [f"{k}: ours {ours.get(k, 0)}, kernel {inner.get(k, 0)}..{outer.get(k, 0)}"
           for k in sorted(set(ours) | set(outer) | set(inner))
           if not inner.get(k, 0) - 2 <= ours.get(k, 0) <= outer.get(k, 0) + 2 + 10 + outer.get(k, 0) // 20]
    c.check(f"NIP per sender and target: call_function_single_prep_ipi() calls less IPIs sent (kprobe "
            f"events) over an idle ping-pong ({sum(ours.values())} counted, {sum(inner.values())}.."
            f"{sum(outer.values())} events)", pong.returncode == 0 and not bad,
            "\n".join(bad) + "\n" + "\n".join(outer1.values())[-800:])
