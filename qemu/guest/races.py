# SPDX-License-Identifier: GPL-2.0
"""Race checks (issue 21), run with the module loaded, each written to fail on the code before its fix:

- `notifier`: what KVM does to a vCPU thread, with tasks attached: threads churn their own preempt
  notifiers (the test module qemu/modules/rrp_races.c) while others wake them, so that a wakeup handler
  walking a list that is changing would crash (the kernel log check at the end of the run catches it);
- `attach_move`: a task moved to another CPU in the middle of attaching (the test module's kprobe in
  the module's own code between reading the CPU and registering) shows the CPU it runs on (before the
  fix the move landed there, left the old CPU in its row and counted a spurious MIG);
- `stopped`: `attach PID` written thousands of times on a stopped multi-threaded process: refused once
  the pending works reach their bound, memory bounded, logged, and everything released when it continues;
- `hotplug`: a CPU offline for longer than any real interval, with a send it never took (the test
  module fires the send's tracepoint without the IPI): no interval recorded spans the offline time;
- kCFI: with a trace event enabled on every tracepoint the module probes, the kernel calls the module's
  probes through each tracepoint's iterator, an indirect call that kCFI checks against the tracepoint's
  prototype (the debug kernel has kCFI; a mismatch traps and the kernel log check reports it).

Also run by the stress test (stress.py), longer and on the debug kernel."""

import errno
import os
import re
import signal
import subprocess
import threading
import time

from latency import parse_hists
from lib import D, TRACING, dmesg, read, run, tracefs, write_errno

HELPER = "/sys/kernel/debug/rrp_races"
# The bound on pending attach/detach works (logic/tasks.rs MAX_PENDING).
MAX_PENDING = 4096
# The tracepoints the module probes (its counting probes and its scheduler hooks). A trace event enabled on
# each adds a second probe, so that the kernel calls the module's through the tracepoint's iterator (an
# indirect call, checked by kCFI) rather than the static call it makes to a lone probe on x86.
EVENTS = ["sched/sched_switch", "sched/sched_wakeup", "sched/sched_process_fork", "sched/sched_process_exit",
          "ipi/ipi_send_cpu", "ipi/ipi_send_cpumask", "csd/csd_queue_cpu", "irq_vectors/reschedule_entry",
          "irq_vectors/call_function_entry", "irq_vectors/call_function_single_entry", "ipi/ipi_entry"]


def kcfi():
    """Whether the kernel has kCFI: every function then has a `__cfi_` preamble symbol."""
    with open("/proc/kallsyms") as f:
        return any(" __cfi_" in l for l in f)


def iterators(on=True):
    """Enables (disables) the trace event of each tracepoint the module probes (with tracing off: nothing
    is recorded, the events' probes still run); returns those changed."""
    tracefs("tracing_on", "0" if on else "1")
    changed = []
    for e in EVENTS:
        if os.path.exists(f"{TRACING}/events/{e}/enable"):
            tracefs(f"events/{e}/enable", "1" if on else "0")
            changed.append(e)
    return changed


def load_helper(c, g):
    """insmod the test module (after resched_probe: its `move` probes resched_probe's code)."""
    if not g.testmod or not os.path.exists(g.testmod):
        return c.not_ok("the race checks' test module was built (make testmod)", g.testmod)
    return c.check("insmod rrp_races.ko", run(["insmod", g.testmod]).returncode == 0)


def unload_helper(c):
    c.check("rmmod rrp_races", run(["rmmod", "rrp_races"]).returncode == 0)


def notifier(c, g, seconds):
    """KVM's notifier churn against wakers and signals, for `seconds`, the churning threads attached."""
    r = run([g.attach, g.load, "notifier", HELPER, str(seconds)], timeout=seconds + 300)
    print(f"# {r.stdout.strip()}")
    m = re.search(r"rounds=(\d+) wakeups=(\d+) woken=(\d+) oncpu=(\d+) signals=(\d+)", r.stdout)
    rounds, _, woken, oncpu, signals = (int(x) for x in m.groups()) if m else (0, 0, 0, 0, 0)
    wakeup = parse_hists(read(f"{D}/latency/wakeup")).get("wakeup", {})
    c.check(f"notifier churn for {seconds} s with the churning threads attached: {rounds} rounds, "
            f"{woken} wakeups in a sleeping state, {oncpu} of them still on their CPU (the KVM case), "
            f"{signals} signals handled", r.returncode == 0 and rounds >= 1000 and oncpu >= 100
            and signals > 0, r.stdout + r.stderr)
    c.check("wakeups of the attached churners off their CPU were measured (latency/wakeup not empty)",
            sum(wakeup.values()) > 0, read(f"{D}/latency/wakeup"))


def processor():
    """The CPU this thread runs on (field 39 of /proc/thread-self/stat)."""
    return int(read("/proc/thread-self/stat").rsplit(")", 1)[1].split()[36])


def row_cpu(tid):
    for line in read(f"{D}/tasks").splitlines()[1:]:
        f = line.split()
        if f and f[0] == str(tid):
            return f[-1]
    return None


def attach_move(c, rounds=6):
    """Attaches this thread `rounds` times (by itself and by PID), each time moved to another CPU from
    the middle of attaching (the test module's `move`)."""
    tid, everywhere = threading.get_native_id(), os.sched_getaffinity(0)
    moved0 = int(re.search(r"moved=(\d+)", read(f"{HELPER}/move")).group(1))
    bad = []
    try:
        for i in range(rounds):
            os.sched_setaffinity(0, everywhere)
            how = "attach" if i % 2 else f"attach {os.getpid()}"
            if write_errno(f"{HELPER}/move", str(tid).encode()) or write_errno(f"{D}/attach", how.encode()):
                bad.append(f"round {i}: cannot arm or attach")
                continue
            here, row = processor(), row_cpu(tid)
            if row != str(here):
                bad.append(f"round {i} ({how}): the row says CPU {row}, the thread runs on CPU {here}")
            write_errno(f"{D}/attach", b"detach")
    finally:
        write_errno(f"{HELPER}/move", b"0")
        os.sched_setaffinity(0, everywhere)
    moved = int(re.search(r"moved=(\d+)", read(f"{HELPER}/move")).group(1)) - moved0
    c.check(f"{rounds} attaches (by itself and by PID), each moved to another CPU from its middle ({moved} "
            "moves): the row shows the CPU the thread runs on (no migration from before it was attached)",
            moved == rounds and not bad, "\n".join(bad))


def meminfo(field):
    m = re.search(rf"^{field}:\s+(\d+) kB", read("/proc/meminfo"), re.M)
    return int(m.group(1))


def footer_pending():
    m = re.search(r"^# (\d+) attach/detach works wait", read(f"{D}/tasks"), re.M)
    return int(m.group(1)) if m else 0


def tids(pid):
    return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))


def attached_tids():
    return sorted(int(l.split()[0]) for l in read(f"{D}/tasks").splitlines()[1:] if l and not l.startswith("#"))


def wait_for(cond, timeout):
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def stopped(c, g, writes=5000, threads=8):
    """`attach PID` on a stopped process with `threads` threads, `writes` times."""
    prog = ("import threading, time\n"
            f"for _ in range({threads - 1}): threading.Thread(target=time.sleep, args=(1000,), daemon=True).start()\n"
            "print('ready', flush=True)\ntime.sleep(1000)\n")
    p = subprocess.Popen(["/usr/bin/python3", "-c", prog], stdout=subprocess.PIPE, text=True)
    try:
        p.stdout.readline()
        c.check(f"a process with {threads} threads", len(tids(p.pid)) == threads, tids(p.pid))
        os.kill(p.pid, signal.SIGSTOP)
        wait_for(lambda: all(read(f"/proc/{p.pid}/task/{t}/stat").split()[2] == "T" for t in tids(p.pid)), 10)
        logged_before = dmesg().count("already wait for their threads")
        slab0 = meminfo("Slab")
        t0 = time.monotonic()
        results = {}
        for _ in range(writes):
            e = write_errno(f"{D}/attach", f"attach {p.pid}".encode())
            results[e] = results.get(e, 0) + 1
        elapsed = time.monotonic() - t0
        slab1 = meminfo("Slab")
        pending = footer_pending()
        accepted = results.get(0, 0)
        grown = slab1 - slab0
        print(f"# {writes} x attach {p.pid} (stopped, {threads} threads): {results} (errno: count), slab "
              f"{slab0} -> {slab1} kB, {pending} works pending")
        c.check(f"{writes} x `attach PID` on a stopped {threads}-thread process: the first "
                f"{MAX_PENDING // threads} accepted, every later one EBUSY",
                accepted == MAX_PENDING // threads and results.get(errno.EBUSY, 0) == writes - accepted, results)
        c.check(f"... {MAX_PENDING} works pending (tasks says so), slab grown by at most 1 MiB "
                f"({grown} kB; 64 bytes a work)", pending == MAX_PENDING and grown < 1024, f"{pending} {grown}")
        logged = dmesg().count("already wait for their threads") - logged_before
        # At most 10 lines per 5 s (logic/ratelimit.rs) over the time the writes took.
        allowed = 10 * (int(elapsed / 5) + 2)
        c.check(f"... the refusal is logged, rate-limited ({logged} lines for {writes - accepted} refusals in "
                f"{elapsed:.0f} s, at most {allowed})", 1 <= logged <= allowed, logged)
        rm = run(["rmmod", "resched_probe"])
        c.check("... rmmod refused while works are pending (they hold the module)", rm.returncode != 0,
                rm.stdout + rm.stderr)
        os.kill(p.pid, signal.SIGCONT)
        drained = wait_for(lambda: footer_pending() == 0, 60)
        c.check(f"once it continues, every work runs ({footer_pending()} pending) and attaches its thread",
                drained and wait_for(lambda: set(tids(p.pid)) <= set(attached_tids()), 10),
                f"{tids(p.pid)} vs {attached_tids()}")
        c.check("detach PID detaches them all", write_errno(f"{D}/attach", f"detach {p.pid}".encode()) == 0
                and wait_for(lambda: not set(tids(p.pid)) & set(attached_tids()), 30), attached_tids())
    finally:
        p.kill()
        p.wait()


def hotplug(c, g, cpu=3, offline_s=8):
    """CPU `cpu` offline for `offline_s` under load: no recorded interval is that long."""
    def start(*args):
        # A session of its own: busypong's SCHED_IDLE spinners outlive their parent, the group goes whole.
        return subprocess.Popen([g.load, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)

    loads = [start(*a) for a in (["busypong", "0", "1", "1000000000"], ["pingpong", "2", str(cpu), "1000000000"],
                                 ["membarrier", "1000000000"])]
    try:
        time.sleep(1)
        with open(f"{D}/reset", "w") as f:
            f.write("1")
        time.sleep(0.5)
        with open(f"/sys/devices/system/cpu/cpu{cpu}/online", "w") as f:
            f.write("0")
        # A reschedule IPI it never takes: its start must not outlive the offline time.
        c.check(f"a reschedule send to offline CPU{cpu} without its IPI (the test module's `send`)",
                write_errno(f"{HELPER}/send", str(cpu).encode()) == 0)
        time.sleep(offline_s)
        with open(f"/sys/devices/system/cpu/cpu{cpu}/online", "w") as f:
            f.write("1")
        # The CPU's own load again (its pinned processes lost it at offline): a start left from before
        # would end at its first IPI or switch now.
        loads += [start(*a) for a in (["pingpong", "2", str(cpu), "1000000000"],
                                      ["busypong", "1", str(cpu), "1000000000"])]
        time.sleep(3)
    finally:
        for p in loads:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    hists = {}
    for f in ("latency/resched", "latency/ipi"):
        for name, h in parse_hists(read(f"{D}/{f}")).items():
            hists[f"{f} @{name}"] = h
    longest = {k: max((lo for lo, n in h.items() if n), default=0) for k, h in hists.items()}
    total = sum(sum(h.values()) for h in hists.values())
    # An interval of offline_s (8 s) lands in a bucket starting at 4 s or more.
    bound = 1 << (int(offline_s * 1e9).bit_length() - 1)
    c.check(f"CPU{cpu} offline {offline_s} s under load: {total} intervals recorded, none in a bucket from "
            f"{bound / 1e9:.1f} s up (longest buckets start at {max(longest.values(), default=0) / 1e6:.1f} ms)",
            total > 0 and all(lo < bound for lo in longest.values()), longest)
    c.check(f"CPU{cpu} online again", read("/sys/devices/system/cpu/online").strip() == "0-3")


def recursion(c, g, steps=2000):
    """A tracepoint the module probes, fired from inside the unwinder while the module takes a stack (7.x:
    rcu_read_unlock_special() sets need-resched there): the test module's `recurse` makes the next
    `steps` unwinder steps set the flag anew. The stack taking inside must not recurse (it overflowed
    the kernel stack before); such a hit's stack counts as dropped."""
    if write_errno(f"{HELPER}/recurse", b"0") == errno.ENODEV:
        print("# recursion from the unwinder: not checked (no sched_set_need_resched_tp from "
              "set_tsk_need_resched on this kernel, or no kprobe on unwind_next_frame)")
        return
    from stacks import consistent, stacks
    write_errno(f"{D}/stacks_enable", b"0")
    write_errno(f"{D}/stacks_capacity", b"512")
    # Recording on, then the reset: the window's every hit is then recorded or dropped.
    write_errno(f"{D}/stacks_enable", b"1")
    write_errno(f"{D}/reset", b"1")
    try:
        write_errno(f"{HELPER}/recurse", str(steps).encode())
        r = run([g.load, "busypong", "0", "1", "2000"], timeout=300)
        state = dict(kv.split("=") for kv in read(f"{HELPER}/recurse").split())
        write_errno(f"{HELPER}/recurse", b"0")
        dropped = stacks("RSC")["dropped"]
        _, agree, text = consistent("RSC")
    finally:
        write_errno(f"{D}/stacks_enable", b"0")
    c.check(f"need-resched set {state['done']} times from inside the unwinder while stacks were taken "
            f"under load: no recursion, the RSC hits whose stack could not be taken counted as dropped "
            f"({dropped}), stack counts + dropped == hits ({text})",
            r.returncode == 0 and int(state["done"]) > 0 and dropped > 0 and agree,
            f"{state} {r.stdout[-300:]}")


def main(c, g):
    print(f"# kCFI {'on' if kcfi() else 'off'}; trace events on beside the module's probes: {' '.join(iterators())}")
    try:
        if load_helper(c, g):
            try:
                notifier(c, g, int(os.environ.get("RACES_NOTIFIER_S", "20")))
                attach_move(c)
                hotplug(c, g)
                recursion(c, g)
            finally:
                unload_helper(c)
        stopped(c, g)
    finally:
        iterators(False)
