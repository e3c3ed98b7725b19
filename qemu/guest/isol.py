# SPDX-License-Identifier: GPL-2.0
"""The isolated-CPU boot (`make check`, third boot): the guest boots with `isolcpus=3 nohz_full=3`, as the
people who isolate CPUs run theirs, and noise/ is checked on CPU 3 there: the isolation in force, a task
alone on CPU 3 (its tick stops: nohz_full), a timer armed there, a kworker queued on it from CPU 0, a
queued call of known length (the test module), then noise.py's checks (membarrier and TLB shootdowns
from CPU 0, a virtio interrupt moved to CPU 3 and away), each count against the kernel's own."""

import os
import re
import subprocess
import time

import noise
from lib import D, KO_NAME, insmod, module_listed, read, rmmod

CPU = noise.CPU


def tick_window(c, g):
    """A task spins alone on CPU 3 for 3 s: over its last 2 s the local timer's interruptions there, ours
    against /proc/interrupts (the tick of a nohz_full CPU running one task stops but for the housekeeping
    ones: printed beside CPU 0's, which ticks). Then 300 sleeps of 1 ms on CPU 3 (usleep(): relative, so
    each arms a timer there): not one interrupt each (6.12 took 224-228, 7.3 272 here: the kernel expires
    every timer due, within its slack, in one interrupt, and under TCG a sleep may be due before the CPU
    idles), but at least half as many, each counted as /proc/interrupts counts it."""
    spin = subprocess.Popen([g.load, "spin", str(CPU), "3000"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    spin.stdout.readline()  # "start"
    spin.stdin.write(b"\n")
    spin.stdin.flush()
    time.sleep(1)
    timer = noise.timer_key()
    p0 = noise.kernel_counts()
    ours0 = noise.rows(read(f"{D}/noise/cpu{CPU}"))
    p1 = noise.kernel_counts()
    cpu0 = noise.kernel_counts(0).get(timer, 0)
    time.sleep(2)
    q0 = noise.kernel_counts()
    ours1 = noise.rows(read(f"{D}/noise/cpu{CPU}"))
    q1 = noise.kernel_counts()
    cpu0 = noise.kernel_counts(0).get(timer, 0) - cpu0
    spin.kill()
    spin.wait(timeout=60)
    low, high = q0.get(timer, 0) - p1.get(timer, 0), q1.get(timer, 0) - p0.get(timer, 0)
    n = ours1.get(timer, (0,))[0] - ours0.get(timer, (0,))[0]
    print(f"# a task alone on nohz_full CPU {CPU} for 2 s: {n} local timer interruptions there (CPU 0: {cpu0})")
    c.check(f"a task alone on CPU {CPU} (nohz_full): ours {n} local timer interruptions ({timer}) in 2 s, "
            f"/proc/interrupts {low}..{high}", low - 1 <= n <= high + 1 and (p1.get(timer) is not None))
    # A timer on CPU 3: a thread there sleeps 1 ms 300 times (each sleep an hrtimer armed on CPU 3).
    p0 = noise.kernel_counts()
    ours0 = noise.rows(read(f"{D}/noise/cpu{CPU}"))
    p1 = noise.kernel_counts()
    sleeper = subprocess.Popen([g.load, "sleeper", "300", "1000"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               preexec_fn=lambda: os.sched_setaffinity(0, {CPU}))
    sleeper.stdout.readline()  # "start"
    sleeper.stdin.write(b"\n")
    sleeper.stdin.flush()
    sleeper.stdout.readline()  # its result
    sleeper.kill()
    sleeper.wait(timeout=60)
    q0 = noise.kernel_counts()
    ours1 = noise.rows(read(f"{D}/noise/cpu{CPU}"))
    q1 = noise.kernel_counts()
    low, high = q0.get(timer, 0) - p1.get(timer, 0), q1.get(timer, 0) - p0.get(timer, 0)
    n = ours1.get(timer, (0,))[0] - ours0.get(timer, (0,))[0]
    c.check(f"300 timers of 1 ms on CPU {CPU}: ours {n} local timer interruptions (>= 150), /proc/interrupts "
            f"{low}..{high}", n >= 150 and low - 1 <= n <= high + 1)


def task_rows(text):
    """The TASK rows of a noise/cpuN file: {name: (count, time_ns)}."""
    return {m.group(3): (int(m.group(1)), int(m.group(2)))
            for m in re.finditer(r"^TASK\s+(\d+)\s+(\d+)\s+\S+\s+\S+\s+\S+\s+(\S+) \(kernel thread\)$", text, re.M)}


def bound_kthreads():
    """CPU 3's own kernel threads (kworker/3:N, ksoftirqd/3, migration/3, ...): {name: switches out of
    the CPU so far}, from /proc/PID/status (voluntary + nonvoluntary context switches, counted in
    __schedule() by the scheduler itself, not by a tracepoint)."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            status = read(f"/proc/{pid}/status")
        except OSError:
            continue
        name = re.search(r"^Name:\s+(\S+)", status, re.M)
        if not name or not re.search(rf"/{CPU}(:|$)", name.group(1)):
            continue
        n = re.findall(r"^(?:non)?voluntary_ctxt_switches:\s+(\d+)", status, re.M)
        # A kworker's Name carries its workqueue after `-` or `+` (wq_worker_comm()); its comm does not.
        out[re.split(r"[-+]", name.group(1), maxsplit=1)[0]] = sum(int(x) for x in n)
    return out


def kworker(c):
    """A kworker on CPU 3, queued from CPU 0: `vm/stat_refresh` runs a work item on each online CPU
    (schedule_on_each_cpu()); the wakeup of CPU 3's kworker is sent from CPU 0, a RES IPI or a queued wakeup
    (WKL), and shows among CPU 3's senders; its turns show as TASK rows, counted as the scheduler counts
    its switches (/proc/PID/status, read around and inside the window: one turn in progress at either end
    aside)."""
    outer0 = bound_kthreads()
    text0 = read(f"{D}/noise/cpu{CPU}")
    inner0 = bound_kthreads()
    subprocess.run(["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do cat /proc/sys/vm/stat_refresh; done"],
                   stdout=subprocess.DEVNULL, timeout=60, preexec_fn=lambda: os.sched_setaffinity(0, {0}))
    inner1 = bound_kthreads()
    text1 = read(f"{D}/noise/cpu{CPU}")
    outer1 = bound_kthreads()
    before, after = noise.sent(text0), noise.sent(text1)
    woke = {k: n - before.get(k, 0) for k, n in after.items() if k[1] == 0 and k[0] in ("RES", "WKL")
            and n > before.get(k, 0)}
    c.check(f"a kworker queued on CPU {CPU} from CPU 0 (vm/stat_refresh x 10): CPU 0 among its senders "
            f"({woke})", sum(woke.values()) >= 1)
    t0, t1 = task_rows(text0), task_rows(text1)
    shown, bad = [], []
    for name, (n, _) in t1.items():
        if name not in outer0 or name not in outer1:
            continue
        ours = n - t0.get(name, (0, 0))[0]
        low = inner1.get(name, 0) - inner0.get(name, 0)
        high = outer1[name] - outer0[name]
        shown.append(f"{name} {ours} ({low}..{high})")
        if not low - 1 <= ours <= high + 1:
            bad.append(f"{name}: ours {ours}, /proc/PID/status {low}..{high}")
    kw = [x for x in shown if x.startswith(f"kworker/{CPU}:")]
    c.check(f"CPU {CPU}'s kernel threads' turns equal their context switches (/proc/PID/status): "
            + ", ".join(shown), bool(kw) and not bad, "; ".join(bad) or "no kworker row")
    for name, (n, ns) in t1.items():
        print(f"# TASK {name}: {n} turns, {ns} ns since the load")


def queued_call_time(c, g):
    """A queued call of a known length: 100 calls of 2 ms each, sent from CPU 0, run rrp_spin() on CPU 3
    (the test module), which times itself inside with the monotonic clock. Our time for it
    (csd_function_entry to exit, on noise/'s clock: x86's TSC) holds the call's own, and exceeds it by
    no more than the call's way in and out (5% and 50 us a call, under TCG): a clock counted at a wrong
    rate fails one side or the other."""
    if not g.testmod or subprocess.run(["insmod", g.testmod]).returncode != 0:
        c.check("the test module loads (a queued call of known length)", False, g.testmod or "RRP_TESTMOD unset")
        return
    spin = "/sys/kernel/debug/rrp_races/spin"
    calls, us = 100, 2000

    def stats():
        return {k: int(v) for k, v in (kv.split("=") for kv in read(spin).split())}

    def ours():
        return noise.rows(read(f"{D}/noise/cpu{CPU}")).get(("CSD", "rrp_spin"), (0, 0, 0))
    old = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {0})
        s0, o0 = stats(), ours()
        with open(spin, "w") as f:
            f.write(f"{CPU} {us} {calls}\n")
        o1, s1 = ours(), stats()
    finally:
        os.sched_setaffinity(0, old)
        subprocess.run(["rmmod", "rrp_races"])
    n, ns = o1[0] - o0[0], o1[1] - o0[1]
    inside = s1["inside_ns"] - s0["inside_ns"]
    high = inside * 105 // 100 + calls * 50_000
    print(f"# rrp_spin on CPU {CPU}: ours {n} calls, {ns} ns, max {o1[2]} ns; inside: "
          f"{s1['calls'] - s0['calls']} calls, {inside} ns, max {s1['max_ns']} ns")
    c.check(f"a queued call of known length: rrp_spin x {calls} on CPU {CPU}, ours {n} calls, {ns} ns in "
            f"{inside}..{high} (its own clock inside)", n == calls == s1["calls"] - s0["calls"]
            and inside <= ns <= high)
    # Our longest call is one call's time, which holds that call's own (at most the longest inside) and
    # exceeds it by at most what all calls together exceed theirs by (ns - inside): each of ours holds its
    # call's. A host that deschedules the vCPU between our clock and the call's (TCG on 2 cores: once 4 ms,
    # stop 36's CI on arm64) lands in both sides. A max that took two calls, or another row's, fails it
    # unless the calls' way in and out was that long in all.
    max_high = s1["max_ns"] * 105 // 100 + 50_000 + max(0, ns - inside)
    c.check(f"... its longest call: ours {o1[2]} ns in {s1['max_ns']}..{max_high} (the longest inside, "
            f"plus all calls' excess over theirs)", o0[0] == 0 and s1["max_ns"] <= o1[2] <= max_high)


def main(c, g):
    isolated = read("/sys/devices/system/cpu/isolated").strip()
    nohz = read("/sys/devices/system/cpu/nohz_full").strip() if os.path.exists(
        "/sys/devices/system/cpu/nohz_full") else "(no file)"
    c.check(f"CPU {CPU} is isolated (isolcpus: {isolated!r}) and nohz_full ({nohz!r})",
            isolated == str(CPU) and nohz == str(CPU))
    c.check(f"insmod {KO_NAME}.ko", insmod(g.ko))
    if not module_listed():
        return
    tick_window(c, g)
    kworker(c)
    queued_call_time(c, g)
    noise.main(c, g)
    c.check(f"rmmod {KO_NAME}", rmmod())
    c.check(f"unload removed {D}", not os.path.exists(D))
