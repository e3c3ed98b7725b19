# SPDX-License-Identifier: GPL-2.0
"""Preempt-notifier checks, run with the module loaded: attach/detach, inheritance by threads and
children, preempted vs voluntary against /proc/<pid>/status, migrations, churn, unload while attached,
the system-wide sched_switch rows."""

import errno
import os
import re
import select
import signal
import subprocess
import sys
import time

from lib import D, PREFIX, dmesg, in_use, parse_table, read, run, write_errno

def tasks():
    """{pid: {"comm", "in", "out", "pre", "vol", "mig", "cpu"}} from the tasks file."""
    rows = {}
    for line in read(f"{D}/tasks").splitlines()[1:]:
        f = line.split()
        if len(f) == 8 and f[0].isdigit():
            rows[int(f[0])] = dict(comm=f[1], ins=int(f[2]), outs=int(f[3]), pre=int(f[4]),
                                   vol=int(f[5]), mig=int(f[6]), cpu=f[7])
    return rows


def sched():
    return parse_table(read(f"{D}/sched"))[1]


def status(pid):
    s = read(f"/proc/{pid}/status")
    return (int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", s, re.M).group(1)),
            int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", s, re.M).group(1)))


def attach_errno(data):
    return write_errno(f"{D}/attach", data)


def start(g, *args, attached=True):
    """rrp-load ARGS, run through resched-attach unless `attached` is False."""
    cmd = ([g.attach] if attached else []) + [g.load, *map(str, args)]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def wait_line(p, want, timeout=300):
    """Reads p's stdout until the line `want`; False at EOF or after `timeout` seconds."""
    end = time.time() + timeout
    while True:
        left = end - time.time()
        if left <= 0 or not select.select([p.stdout], [], [], left)[0]:
            return False
        line = p.stdout.readline()
        if not line:
            return False
        if line.strip() == want:
            return True


def go(p, wait=True):
    """Lets a `start`-gated rrp-load mode begin its work."""
    if wait:
        wait_line(p, "start")
    p.stdin.write("go\n")
    p.stdin.flush()


def stop(*procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
        p.wait()


def delta(after, before):
    return {k: {cpu: after[k][cpu] - before[k].get(cpu, 0) for cpu in after[k]} for k in after}


def measured(p):
    """Waits for p's `start`, reads its counts and /proc status, lets it go, waits for `done`, reads
    again: the deltas over the work, both sides (attach and exec happened before `start`)."""
    ok = wait_line(p, "start")
    t0, s0, k0 = tasks().get(p.pid), status(p.pid), sched()
    go(p, wait=False)
    ok = wait_line(p, "done") and ok
    t1, s1, k1 = tasks().get(p.pid), status(p.pid), sched()
    if not (ok and t0 and t1):
        return None, (0, 0), delta(k1, k0), t1
    t = {k: t1[k] - t0[k] for k in ("ins", "outs", "pre", "vol", "mig")}
    return t, (s1[0] - s0[0], s1[1] - s0[1]), delta(k1, k0), t1


ZERO = dict(ins=0, outs=0, pre=0, vol=0, mig=0)


def latency_table(text):
    """The per-CPU table of a latency file (from its line of CPU headers on)."""
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if l.split() and all(w.startswith("CPU") for w in l.split())), 0)
    return "\n".join(lines[start:])


def main(c, g):
    c.check("sched and tasks are root-only read-only, attach write-only",
            [os.stat(f"{D}/{n}").st_mode & 0o777 for n in ("sched", "tasks", "attach")] == [0o400, 0o400, 0o200])
    cols, rows = parse_table(read(f"{D}/sched"))
    c.check("sched: rows IN OUT PRE VOL MIG CSW CSP", list(rows) == ["IN", "OUT", "PRE", "VOL", "MIG", "CSW", "CSP"],
            read(f"{D}/sched"))

    # --- Bad input attaches nothing ---------------------------------------------------------------------
    for data in [b"atach", b"", b"x" * 4096, b"\0", b"attach\0", b"ATTACH", b" attach", b"attach detach"]:
        e = attach_errno(data)
        c.check(f"attach <- {data[:16]!r}{'...' if len(data) > 16 else ''}: EINVAL, nothing attached",
                e == errno.EINVAL and os.getpid() not in tasks() and not tasks(), f"errno {e}")
    c.check("detach when not attached: ENOENT", attach_errno(b"detach") == errno.ENOENT)
    c.check("bad attach input is logged", f"{PREFIX}attach: expected" in dmesg())

    # --- attach / detach by the task itself ------------------------------------------------------------
    e = attach_errno(b"attach\n")
    mine = tasks().get(os.getpid())
    c.check("attach\\n: this process appears in tasks with its comm", e == 0 and mine is not None
            and mine["comm"].startswith("python"), f"errno {e}, {mine}")
    e = attach_errno(b"attach")
    c.check("attach twice: accepted, still one row", e == 0 and list(tasks()).count(os.getpid()) == 1)
    time.sleep(0.2)
    e = attach_errno(b"detach")
    c.check("detach: the row is gone", e == 0 and os.getpid() not in tasks(), f"errno {e}")

    # --- A CPU-bound attached task sharing CPU 1 with another: preempted ------------------------------
    # A task preempted between set_current_state() and schedule() is involuntary for the kernel but not
    # TASK_RUNNING at sched_out for us, and a blocking task with a signal pending is voluntary for the
    # kernel but runnable for us: hence a small allowance.
    MS = 3000
    rival = start(g, "spin", 1, MS + 2000, attached=False)
    go(rival)
    hog = start(g, "spin", 1, MS)
    t, (vol, nonvol), d, row = measured(hog)
    stop(hog, rival)
    print(f"# spin on CPU1 beside a rival, over the spin: ours {t}; /proc/{hog.pid}/status voluntary +{vol}, "
          f"nonvoluntary +{nonvol}; sched PRE {d['PRE']}")
    print(f"# tasks row at the end: {row}")
    c.check("spinning attached task ran and is listed", t is not None)
    t = t or ZERO
    row = row or dict(ZERO, cpu="-")
    c.check(f"PRE grows on CPU1 ({d['PRE'][1]} >= 10)", d["PRE"][1] >= 10)
    c.check(f"task preempted +{t['pre']} ~ kernel nonvoluntary_ctxt_switches +{nonvol}",
            t["pre"] >= 10 and abs(t["pre"] - nonvol) <= 2 + nonvol // 50)
    c.check(f"task voluntary +{t['vol']} ~ kernel voluntary_ctxt_switches +{vol}", abs(t["vol"] - vol) <= 2 + vol // 50)
    c.check(f"task in - out is 0 or 1 ({row['ins']} - {row['outs']})", row["ins"] - row["outs"] in (0, 1))
    # How long: the hog's preempted slices on CPU1 last about a tick (4 ms at HZ=250; EEVDF's base slice
    # is 3 ms), while the tick's own reschedule requests on CPU1 are answered at that interrupt's return,
    # far below a tick (this kernel is CONFIG_PREEMPT).
    slices = parse_table(latency_table(read(f"{D}/latency/slices")))[1]
    resched = parse_table(latency_table(read(f"{D}/latency/resched")))[1]
    p50, l50 = slices.get("P50", {}).get(1, 0), resched.get("L50", {}).get(1, 0)
    c.check(f"CPU1's preempted slices: p50 below {p50} ns, at least a millisecond; its local resched "
            f"requests: p50 below {l50} ns, under a millisecond", p50 >= 1 << 20 and 0 < l50 <= 1 << 20)

    # --- A task that sleeps in a loop: voluntary ---------------------------------------------------------
    sl = start(g, "sleeper", 300, 2000)
    t, (vol, nonvol), d, row = measured(sl)
    stop(sl)
    print(f"# sleeper, over the sleeps: ours {t}; status voluntary +{vol}, nonvoluntary +{nonvol}")
    t = t or ZERO
    row = row or dict(ZERO, cpu="-")
    c.check(f"sleeper: VOL grows ({sum(d['VOL'].values())} >= 300)", sum(d["VOL"].values()) >= 300)
    c.check(f"sleeper: task voluntary +{t['vol']} >= 300, preempted +{t['pre']} about 0",
            t["vol"] >= 300 and t["pre"] <= 5)
    c.check(f"sleeper: voluntary +{t['vol']} ~ kernel +{vol}, preempted +{t['pre']} ~ kernel +{nonvol}",
            abs(t["vol"] - vol) <= 2 + vol // 50 and abs(t["pre"] - nonvol) <= 2)
    c.check(f"sleeper: in - out is 0 or 1 ({row['ins']} - {row['outs']})", row["ins"] - row["outs"] in (0, 1))

    # --- A task moved between CPUs: migrations ----------------------------------------------------------
    before = sched()
    mg = start(g, "migrate", 200)
    ok = wait_line(mg, "done")
    after = sched()
    row = tasks().get(mg.pid)
    stop(mg)
    d = delta(after, before)
    row = row or dict(ins=0, outs=0, pre=0, vol=0, mig=0, cpu="-")
    c.check(f"migrate: MIG grows ({sum(d['MIG'].values())} >= 100) and the task counts {row['mig']} >= 100",
            ok and sum(d["MIG"].values()) >= 100 and row["mig"] >= 100)
    c.check(f"migrate: in - out is 0 or 1 ({row['ins']} - {row['outs']})", row["ins"] - row["outs"] in (0, 1))
    # Per CPU over the window: every switch out of an attached task is also a context switch there.
    bad = [f"CPU{x}: CSW {d['CSW'][x]} < OUT {d['OUT'][x]}" for x in d["CSW"] if d["CSW"][x] < d["OUT"][x]]
    c.check("CSW per CPU >= attached tasks' OUT over the same window", not bad, "\n".join(bad))
    c.check(f"CSP grows and stays <= CSW ({sum(d['CSP'].values())} <= {sum(d['CSW'].values())})",
            0 < sum(d["CSP"].values()) <= sum(d["CSW"].values()))

    # --- Threads and children of an attached task are attached; all vanish on exit -------------------
    tr = start(g, "tree")
    ok = wait_line(tr, "ready")
    time.sleep(0.5)
    rows = tasks()
    tgid_threads = set(int(t) for t in os.listdir(f"/proc/{tr.pid}/task"))
    children = set()
    for p in filter(str.isdigit, os.listdir("/proc")):
        try:
            if int(read(f"/proc/{p}/stat").rsplit(")", 1)[1].split()[1]) == tr.pid:
                children.add(int(p))
        except (OSError, IndexError, ValueError):
            pass
    family = tgid_threads | children
    c.check(f"tree: 4 threads + 2 children + the process = 7 rows, all of the family ({len(rows)} rows)",
            ok and len(rows) == 7 and set(rows) == family, f"rows {sorted(rows)}, family {sorted(family)}")
    tr.stdin.write("go\n")
    tr.stdin.flush()
    tr.wait(timeout=120)
    time.sleep(0.2)
    c.check("tree: after they exit, no row remains", not tasks(), str(tasks()))

    # --- 500 short-lived attached processes -------------------------------------------------------------
    r = run([g.load, "churn", "500", f"{D}/attach"], timeout=600)
    c.check(f"500 processes fork, attach, exit: ran ({r.stdout.strip()})", r.returncode == 0, r.stderr)
    c.check("after the churn, tasks is empty", not tasks(), str(tasks()))

    # --- A bounded attach table: attach_capacity ---------------------------------------------------
    cap = f"{D}/attach_capacity"
    c.check("attach_capacity is root-only read-write (mode 600) and reads 1024",
            os.stat(cap).st_mode & 0o777 == 0o600 and read(cap) == "1024\n", read(cap))
    bad = [(v, write_errno(cap, v)) for v in (b"0", b"4097", b"", b"x", b"-1", b"01", b"2 ", b"99999999999")]
    c.check("attach_capacity: 0, 4097 and malformed numbers are EINVAL and change nothing",
            all(e == errno.EINVAL for _, e in bad) and read(cap) == "1024\n", str(bad))
    c.check("attach_capacity <- 1 accepted", write_errno(cap, b"1\n") == 0 and read(cap) == "1\n")
    e_self = attach_errno(b"attach")
    # A child of an attached process is attached at fork: the table is full, so it is refused and counted.
    child = subprocess.run(["/bin/true"])
    other = subprocess.run([sys.executable, "-c", "import os\ntry:\n"
                            f"    os.write(os.open('{D}/attach', os.O_WRONLY), b'attach')\n    print(0)\n"
                            "except OSError as e:\n    print(e.errno)"], capture_output=True, text=True)
    text = read(f"{D}/tasks")
    rows_full = tasks()
    attach_errno(b"detach")
    c.check("with attach_capacity 1: this process attaches, its child and another process do not "
            "(ENOSPC), and tasks counts the refused ones",
            e_self == 0 and child.returncode == 0 and other.stdout.strip() == str(errno.ENOSPC)
            and list(rows_full) == [os.getpid()]
            and re.search(r"^# [2-9]\d* tasks not attached: attach_capacity \(1\)", text, re.M),
            f"{e_self} {other.stdout} {other.stderr}\n{text}")
    c.check("attach_capacity <- 1024 restores it; nothing is attached",
            write_errno(cap, b"1024") == 0 and not tasks(), read(f"{D}/tasks"))

    # --- Unload while a task is attached: refused, kernel log clean, then allowed ---------------------
    sl = start(g, "sleeper", 1, 1000)
    go(sl)
    wait_line(sl, "done")
    rm = run(["rmmod", "resched_probe"])
    c.check("rmmod while a task is attached fails (module in use)",
            rm.returncode != 0 and in_use(rm.stderr + rm.stdout)
            and os.path.isdir(D) and sl.pid in tasks(), rm.stderr)
    stop(sl)
    time.sleep(0.2)
    c.check("the attached task exited: tasks is empty", not tasks(), str(tasks()))
    rm = run(["rmmod", "resched_probe"])
    c.check("rmmod succeeds once no task is attached", rm.returncode == 0 and not os.path.exists(D), rm.stderr)
