# SPDX-License-Identifier: GPL-2.0
"""The isolated-CPU boot (`make check`, third boot): the guest boots with `isolcpus=3 nohz_full=3`, as the
people who isolate CPUs run theirs, and noise/ is checked on CPU 3 there: the isolation in force, a task
alone on CPU 3 (its tick stops: nohz_full), a timer armed there, a kworker queued on it from CPU 0, then
noise.py's checks (membarrier and TLB shootdowns from CPU 0, a virtio interrupt moved to CPU 3 and away),
each count against the kernel's own."""

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
    noise.main(c, g)
    c.check(f"rmmod {KO_NAME}", rmmod())
    c.check(f"unload removed {D}", not os.path.exists(D))
