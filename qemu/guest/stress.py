# SPDX-License-Identifier: GPL-2.0
"""Stress (`make stress`, normally on the debug kernel: KASAN, lockdep, KFENCE, debug objects): under
a continuous IPI and context-switch load, load/unload cycles against readers, attach churn against
unload attempts, CPU hotplug, concurrent resets, a table of malformed writes. Then the counters must add
up and the module must unload; main.py's last check finds no report in the kernel log."""

import ctypes
import errno
import functools
import os
import re
import subprocess
import threading
import time

import races
from lib import D, KO_NAME, dmesg, module_symbols, module_tags, parse_matrix, parse_table, read, write_errno

CYCLES = int(os.environ.get("STRESS_CYCLES", "200"))
CHURN = int(os.environ.get("STRESS_CHURN", "2000"))
HOTPLUG = int(os.environ.get("STRESS_HOTPLUG", "10"))
CONCURRENT_S = int(os.environ.get("STRESS_CONCURRENT_S", "20"))
NOTIFIER_S = int(os.environ.get("STRESS_NOTIFIER_S", "120"))
# The files every reader reads; main() adds stacks/<tag> for each tag the module offers.
FILES = ["cpus", "ipi", "targets", "matrix", "pairs", "callbacks", "probes", "sched", "tasks", "stacks_enable",
         "stacks_capacity", "attach_capacity", "received", "latency_enable", "latency/resched", "latency/ipi"]
# The load is paced (spinners busy STRESS_DUTY% of the time, a pause after each ping-pong round trip and
# membarrier): under single-threaded emulation four always-busy vCPUs leave the rest a quarter of one
# host core, and a debug-kernel load/unload cycle then took minutes.
LOAD_ENV = dict(os.environ, RRP_LOAD_DUTY=os.environ.get("STRESS_DUTY", "25"),
                RRP_LOAD_PAUSE_US=os.environ.get("STRESS_PAUSE_US", "2000"))


def loaded():
    return os.path.isdir(D)


# insmod and rmmod as the syscalls kmod makes (finit_module, delete_module with O_NONBLOCK), without a
# process per try: on the debug kernel under emulation a process start costs a good part of a second,
# and rmmod is retried while a reader holds a file open.
libc = ctypes.CDLL(None, use_errno=True)
SYS_FINIT_MODULE, SYS_DELETE_MODULE = 313, 176


def insmod(ko):
    fd = os.open(ko, os.O_RDONLY)
    try:
        if libc.syscall(SYS_FINIT_MODULE, fd, b"", 0) == 0:
            return True
        print(f"# insmod: {os.strerror(ctypes.get_errno())}", flush=True)
        return False
    finally:
        os.close(fd)


def rmmod(timeout=60.0):
    """delete_module, retried for up to `timeout` s while something holds a reference (an open file,
    an attached task): EAGAIN/EBUSY. False on any other error or when the time is up."""
    end = time.time() + timeout
    while True:
        if libc.syscall(SYS_DELETE_MODULE, KO_NAME.encode(), os.O_NONBLOCK) == 0:
            return True
        e = ctypes.get_errno()
        if e not in (errno.EAGAIN, errno.EBUSY) or time.time() > end:
            print(f"# rmmod: {os.strerror(e)}", flush=True)
            return False
        time.sleep(0.005)


def try_rmmod():
    """One delete_module: True if the module went away."""
    return libc.syscall(SYS_DELETE_MODULE, KO_NAME.encode(), os.O_NONBLOCK) == 0


class Loop(threading.Thread):
    """Calls `fn` until stopped, counting calls and errors that are not expected."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.stop, self.calls, self.errors = fn, threading.Event(), 0, []

    def run(self):
        while not self.stop.is_set():
            try:
                self.fn()
            except OSError as e:
                # The module is away or going (debugfs refuses opens once its owner is unloading).
                if e.errno not in (errno.ENOENT, errno.ENODEV, errno.ENXIO, errno.EIO):
                    self.errors.append(repr(e))
            self.calls += 1

    def end(self):
        self.stop.set()
        self.join(timeout=60)
        return self.calls, self.errors


def read_all(files):
    for f in files:
        with open(f"{D}/{f}") as fh:
            fh.read()


def reset():
    with open(f"{D}/reset", "w") as f:
        f.write("1")


def stacks_toggle():
    """Recording on and off, and the capacity changed while off (EBUSY when a race turned it on); latency
    recording off and on."""
    for v in (b"1", b"0"):
        with open(f"{D}/stacks_enable", "wb") as f:
            f.write(v)
    for v in (b"0", b"1"):
        with open(f"{D}/latency_enable", "wb") as f:
            f.write(v)
    e = write_errno(f"{D}/stacks_capacity", str(1 + stacks_toggle.n % 512).encode())
    stacks_toggle.n += 1
    if e not in (0, errno.EBUSY):
        raise OSError(e, "stacks_capacity")


stacks_toggle.n = 0


# Malformed writes, each to be refused: (file, data) or (file, data, offset to lseek to first).
CASES = [("reset", d) for d in (b"", b"0", b"2", b"11", b"1 ", b" 1", b"\t1", b"1\r\n", b"1\n\n", b"01",
                                b"+1", b"-1", b"1.0", b"0x1", b"one", b"\0", b"1\0", b"\xff\xfe",
                                b"9" * 40, b"1" * 64, b"1" * 65, b"x" * 4096)]
CASES += [("attach", d) for d in (b"", b"attac", b"attachh", b"Attach", b"attach\r\n", b"attach ",
                                  b"\nattach", b"detach\0", b"attach\n\n", b"\x00" * 16, b"a" * 4096)]
CASES += [("stacks_enable", d) for d in (b"", b"2", b"01", b" 1", b"on", b"1\n\n", b"\0", b"x" * 100)]
CASES += [("stacks_capacity", d) for d in (b"", b"0", b"513", b"-1", b"04", b"abc", b"1 ", b"9" * 30)]
CASES += [("attach_capacity", d) for d in (b"", b"0", b"4097", b"-1", b"08", b"x", b"2 ")]
CASES += [("latency_enable", d) for d in (b"", b"2", b"01", b" 1", b"off", b"1\n\n", b"\0", b"y" * 100)]
CASES += [("reset", b"1", 1), ("attach", b"attach", 3), ("stacks_enable", b"1", 1)]
CASES += [(f, b"1") for f in ("ipi", "targets", "matrix", "pairs", "callbacks", "probes", "cpus", "sched", "tasks",
                             "stacks/RSC", "received", "latency/resched", "latency/ipi")]


def sums():
    """(whether nothing moved while the files were read, what does not add up) for one snapshot.

    The files are separate reads and counters only grow: `ipi` and `targets` are read before and after
    `matrix`, so each matrix row and column sum must lie between the two readings, and equal them
    exactly when nothing moved. A matrix that misses or invents counts falls outside the bounds."""
    def rows():
        a = parse_table(read(f"{D}/ipi"))[1]
        t = parse_table(read(f"{D}/targets"))[1]
        return {k: a[k] for k in ("RES", "CFS", "CFM", "CFT")}, {k: t[k] for k in ("RES", "CAL")}

    (a1, t1) = rows()
    texts = {"matrix": read(f"{D}/matrix")}
    (a2, t2) = rows()
    texts["ipi"], texts["targets"] = read(f"{D}/ipi"), read(f"{D}/targets")
    # Only these rows enter the sums: RSC and WKL move with every wakeup of the kernel's own threads.
    stable = (a1, t1) == (a2, t2)
    M = parse_matrix(texts["matrix"])
    cpus = sorted(a1["RES"])

    def within(name, lo, value, hi):
        return [] if lo <= value <= hi else [f"{name}: {value} not in [{lo}, {hi}]"]

    bad = []
    for s in cpus:
        bad += within(f"RES row CPU{s}", a1["RES"][s], sum(M["RES"][s].values()), a2["RES"][s])
        bad += within(f"CAL row CPU{s}", a1["CFS"][s] + a1["CFT"][s], sum(M["CAL"][s].values()),
                      a2["CFS"][s] + a2["CFT"][s])
    for t in cpus:
        for k in ("RES", "CAL"):
            bad += within(f"{k} column CPU{t}", t1[k][t], sum(M[k][s][t] for s in cpus), t2[k][t])
    return stable, bad, texts


def attached_rows():
    """The rows of `tasks` (the attached tasks), none if it cannot be read."""
    try:
        return read(f"{D}/tasks").splitlines()[1:]
    except OSError:
        return []


def main(c, g):
    t_start = time.time()
    kasan = [l for l in dmesg().splitlines() if "KernelAddressSanitizer initialized" in l]
    print(kasan[0] if kasan else "guest: no KASAN in this kernel")
    cfi = races.kcfi()
    print(f"guest: kCFI {'on' if cfi else 'off'} in this kernel")
    if kasan:
        c.check("the debug kernel has kCFI (CONFIG_CFI_CLANG: __cfi_ symbols)", cfi)
    print(f"# trace events on beside the module's probes (their iterators in use): {' '.join(races.iterators())}")

    # What the module offers, from the module: a first load reads its probes, whose tags name the
    # stacks/<tag> files the readers read.
    insmod(g.ko)
    tags = module_tags() if loaded() else []
    rmmod()
    read_files = functools.partial(read_all, FILES + [f"stacks/{t}" for t in tags])

    # Continuous load: reschedule IPIs (busy ping-pong 0-1), wakelist + call-function IPIs (idle ping-pong
    # 2-3), call-function IPIs to many CPUs (membarrier).
    load = [subprocess.Popen([g.load, *a], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=LOAD_ENV)
            for a in (["busypong", "0", "1", "1000000000"], ["pingpong", "2", "3", "1000000000"],
                      ["membarrier", "1000000000"])]
    time.sleep(1)

    # --- Load/unload cycles while a reader reads every file ---------------------------------------------
    # Every tenth cycle turns stack recording on, so that some unloads happen with it on (each such cycle
    # takes several times longer on the debug kernel: every probe hit unwinds its stack under KASAN).
    reader = Loop(read_files)
    reader.start()
    done = 0
    t_ins = t_rm = 0.0
    for i in range(CYCLES):
        t0 = time.time()
        if not insmod(g.ko):
            break
        t1 = time.time()
        if i % 10 == 5:
            try:
                with open(f"{D}/stacks_enable", "w") as f:
                    f.write("1")
            except OSError:
                pass
        time.sleep(0.005)
        if not rmmod():
            break
        t_ins, t_rm = t_ins + t1 - t0, t_rm + time.time() - t1
        done += 1
        if done % 10 == 0:
            print(f"# [{time.time() - t_start:.0f} s] {done} cycles (insmod {t_ins / done:.2f} s, "
                  f"rmmod {t_rm / done:.2f} s on average)", flush=True)
    calls, errors = reader.end()
    print(f"# [{time.time() - t_start:.0f} s] load/unload cycles done")
    c.check(f"{CYCLES} insmod/rmmod cycles under load with a reader ({done} done, {calls} reader passes)",
            done == CYCLES and not errors, "\n".join(errors[:5]))

    # --- Attach churn while unloading is attempted --------------------------------------------------------
    insmod(g.ko)
    churn = subprocess.Popen([g.load, "churn", str(CHURN), f"{D}/attach"], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    # Unloading is tried every 0.1 s; after one that succeeds (between two processes) the module is loaded
    # again and tried anew as soon as a process has attached again (at most 5 s: every process waits for
    # the module meanwhile). Where an unload takes seconds (PREEMPT_RT with lockdep: 8 s), a fixed pause
    # after each let 100 processes run between 4 tries, none of them refused (2026-12-05).
    unloads = refused = 0
    while churn.poll() is None:
        if try_rmmod():
            unloads += 1
            insmod(g.ko)
            deadline = time.time() + 5
            while time.time() < deadline and churn.poll() is None and not attached_rows():
                time.sleep(0.02)
            continue
        refused += 1
        time.sleep(0.1)
    churn_out = churn.stdout.read().strip()
    print(f"# [{time.time() - t_start:.0f} s] churn done")
    m = re.search(r"ops=(\d+) failed=(\d+) waited=(\d+)", churn_out)
    print(f"# churn: {churn_out}; rmmod refused {refused} times, succeeded {unloads} times")
    c.check(f"{CHURN} attached processes (each with a thread) while rmmod was tried {refused + unloads} times: "
            "every one attached (those that found the module away waited for it)",
            m is not None and int(m.group(1)) == CHURN and int(m.group(2)) == 0 and refused > 0, churn_out)
    if not loaded():
        insmod(g.ko)
    time.sleep(0.2)
    rows = read(f"{D}/tasks").splitlines()[1:]
    c.check("after the churn no task is attached", not rows, "\n".join(rows))

    # --- KVM's notifier churn against wakers, tasks attached (issue 21) ------------------------------------
    if races.load_helper(c, g):
        try:
            races.notifier(c, g, NOTIFIER_S)
        finally:
            races.unload_helper(c)
    print(f"# [{time.time() - t_start:.0f} s] notifier churn done")
    # attach PID on a stopped process: task work and the thread walk (their callbacks under kCFI too).
    races.stopped(c, g)
    print(f"# [{time.time() - t_start:.0f} s] attach PID on a stopped process done")

    # --- CPU hotplug while probes fire and files are read -----------------------------------------------
    reader = Loop(read_files)
    reader.start()
    hot_errors = []
    for i in range(HOTPLUG):
        for cpu in (1, 2, 3):
            before = parse_table(read(f"{D}/ipi"))[1]
            with open(f"/sys/devices/system/cpu/cpu{cpu}/online", "w") as f:
                f.write("0")
            cols, rows = parse_table(read(f"{D}/ipi"))
            if cpu in cols:
                hot_errors.append(f"CPU{cpu} offline but still a column: {cols}")
            with open(f"/sys/devices/system/cpu/cpu{cpu}/online", "w") as f:
                f.write("1")
            cols, after = parse_table(read(f"{D}/ipi"))
            if cpu not in cols:
                hot_errors.append(f"CPU{cpu} back online but not a column: {cols}")
            lost = [f"{k} CPU{cpu}: {before[k][cpu]} -> {after[k].get(cpu)}" for k in before
                    if after[k].get(cpu, -1) < before[k][cpu]]
            hot_errors += lost
    calls, errors = reader.end()
    print(f"# [{time.time() - t_start:.0f} s] hotplug done")
    c.check(f"CPU hotplug x{HOTPLUG} of CPUs 1-3: columns follow the online CPUs, no count lost "
            f"({calls} reader passes)", not hot_errors and not errors, "\n".join((hot_errors + errors)[:8]))
    c.check("all CPUs online again", read("/sys/devices/system/cpu/online").strip() == "0-3")

    # --- Concurrent resets and readers ---------------------------------------------------------------------
    loops = [Loop(reset), Loop(reset), Loop(read_files), Loop(read_files), Loop(stacks_toggle)]
    for lp in loops:
        lp.start()
    time.sleep(CONCURRENT_S)
    results = [lp.end() for lp in loops]
    c.check(f"concurrent resets, stack recording on/off and capacity changes, and reads for {CONCURRENT_S} s ({[r[0] for r in results]} calls)",
            all(not r[1] and r[0] > 0 for r in results), str([r[1][:3] for r in results]))

    # --- Malformed writes: each an error, nothing changed --------------------------------------------------
    bad = []
    for case in CASES:
        name, data = case[0], case[1]
        seek = case[2] if len(case) > 2 else 0
        before = parse_table(read(f"{D}/ipi"))[1]
        e = write_errno(f"{D}/{name}", data, seek=seek)
        after = parse_table(read(f"{D}/ipi"))[1]
        kept = all(after[k][x] >= before[k][x] for k in before for x in before[k])
        attached = read(f"{D}/tasks").splitlines()[1:]
        if e == 0 or not kept or attached:
            bad.append(f"{name} <- {data[:20]!r} (seek {seek}): errno {e}, kept {kept}, attached {attached}")
    c.check(f"{len(CASES)} malformed writes across files: each an error, counters kept, nothing attached",
            not bad, "\n".join(bad))

    # --- Stop the load; the counters add up; unload -------------------------------------------------------
    for p in load:
        p.kill()
        p.wait()
    time.sleep(0.5)
    # The files are three reads: they agree when no IPI is sent in between, which the debug kernel's own
    # background work makes rarer; read until a quiet moment. KFENCE patches a static key every sample
    # interval (100 ms), and each patch sends call-function IPIs to every CPU: sample rarely meanwhile.
    kfence = "/sys/module/kfence/parameters/sample_interval"
    interval = read(kfence).strip() if os.path.exists(kfence) else None
    if interval and interval != "0":
        write_errno(kfence, b"100000")
        time.sleep(0.3)
    # Every attempt must stay within its bounds; one read while nothing moved must match exactly.
    attempts, outside = 0, []
    try:
        for attempts in range(1, 101):
            stable, bad, texts = sums()
            outside += bad
            if stable or bad:
                break
    finally:
        if interval and interval != "0":
            write_errno(kfence, interval.encode())
    c.check(f"afterwards the matrix sums to the ipi and targets rows ({attempts} reads, "
            f"{'the last exact while quiet' if stable else 'never quiet: within the bounds of reads before and after'})",
            not outside, f"not adding up: {outside}\n" + texts["ipi"] + texts["targets"] + texts["matrix"])
    symbols = module_symbols() if loaded() else []
    c.check("the module unloads at the end", rmmod() and not loaded())
    kp = read("/sys/kernel/debug/kprobes/list")
    c.check("no kprobe of ours left", not any(s in kp for s in symbols), kp)
    print(f"# stress took {time.time() - t_start:.0f} s")
