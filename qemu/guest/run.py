# SPDX-License-Identifier: GPL-2.0
"""The main job (`make run`): load the module, run a short built-in load, show every file with the
kernel's own /proc/interrupts deltas beside, show the preempt notifiers on attached tasks, unload."""

import re
import subprocess
import sys
import time

from lib import D, KO_NAME, insmod, module_tags, read, rmmod, write_errno


def echo(path, text):
    """`echo TEXT > PATH`, its error printed."""
    e = write_errno(path, f"{text}\n".encode())
    if e:
        print(f"# echo {text} > {path}: errno {e}", flush=True)


def show(title, text):
    """A blank line, `==> title <==` and the text as it is."""
    print()
    print(f"==> {title} <==")
    sys.stdout.write(text)
    sys.stdout.flush()


def irq_rows(text):
    return [l for l in text.splitlines() if re.match(r" *(RES|CAL):", l)]


def irq_deltas(before, after):
    """The RES and CAL rows of /proc/interrupts, after minus before, one column per CPU."""
    lines = []
    for b, a in zip(irq_rows(before), irq_rows(after)):
        bf, af = b.split(), a.split()
        line = f"{bf[0]:<4}"
        for i in range(1, len(bf)):
            if not bf[i].isdigit():
                break
            line += f"{(int(af[i]) if i < len(af) and af[i].isdigit() else 0) - int(bf[i]):11d}"
        lines.append(line)
    return lines


def paragraphs(text, n):
    """The first `n` paragraphs (separated by blank lines) of `text`, each followed by a blank line."""
    paras = [p for p in re.split(r"\n\n+", text.strip("\n")) if p]
    return "".join(p + "\n\n" for p in paras[:n])


def gated(cmd):
    """`echo go | CMD`: started, its line on stdin given, its output thrown away."""
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    p.stdin.write(b"go\n")
    p.stdin.close()
    return p


def status(pid):
    """(comm, voluntary_ctxt_switches, nonvoluntary_ctxt_switches) of `pid`, "" for what cannot be read."""
    try:
        comm = read(f"/proc/{pid}/comm").rstrip("\n")
    except OSError:
        comm = ""
    try:
        s = read(f"/proc/{pid}/status")
    except OSError:
        s = ""
    vol = re.search(r"^voluntary_ctxt_switches:\s+(\d+)", s, re.M)
    nonvol = re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", s, re.M)
    return comm, vol.group(1) if vol else "", nonvol.group(1) if nonvol else ""


def main(c, g):
    c.check(f"insmod {KO_NAME}.ko", insmod(g.ko))

    # Snapshots are read in this process (no new process, so no IPIs of their own): reset, then the
    # kernel's counts; after the load, the kernel's counts, then ours. Our window contains the kernel's.
    echo(f"{D}/reset", 1)
    echo(f"{D}/stacks_enable", 1)
    irq_before = read("/proc/interrupts")
    print("load: busy ping-pong CPU0<->CPU1 (reschedule IPIs), idle ping-pong CPU2<->CPU3 (wakelist")
    print("      wakeups, call-function IPIs), membarrier from CPU0 (call-function IPIs to CPUs 1-3)", flush=True)
    a = subprocess.Popen([g.load, "busypong", "0", "1", "2000"])
    b = subprocess.Popen([g.load, "pingpong", "2", "3", "2000"])
    a.wait()
    b.wait()
    subprocess.run([g.load, "membarrier", "300"])
    irq_after = read("/proc/interrupts")
    files = ["cpus", "ipi", "targets", "matrix", "pairs", "callbacks", "probes"]
    snap = {f: read(f"{D}/{f}") for f in files}
    echo(f"{D}/stacks_enable", 0)

    noise = {f: read(f"{D}/noise/{f}") for f in ("summary", "cpu3")}
    for f in files:
        show(f"{D}/{f}", snap[f])
    # What interrupted the CPUs over the same window, and for how long: all of them, then CPU 3 (the
    # idle ping-pong's and membarrier's target), its sources and their histograms.
    for f, text in noise.items():
        show(f"{D}/noise/{f}", text)
    print()
    print("==> /proc/interrupts RES and CAL received over the same window (compare with targets) <==")
    print("\n".join(irq_deltas(irq_before, irq_after)))
    # Stack attribution was on during the load: the three most counted stacks of each kind the module
    # offers.
    for t in module_tags():
        show(f"{D}/stacks/{t} (header and the 3 most counted stacks)", paragraphs(read(f"{D}/stacks/{t}"), 4))

    # Preempt notifiers: an attached spinner sharing CPU 1 with an unattached one (preempted), an attached
    # task sleeping in a loop (voluntary); read while they wait to be killed.
    print()
    print("attached workload: rrp-load spin on CPU1 beside an unattached spinner; rrp-load sleeper 200 x 2 ms",
          flush=True)
    rival = gated([g.load, "spin", "1", "2500"])
    hog = gated([g.attach, g.load, "spin", "1", "1500"])
    sl = gated([g.attach, g.load, "sleeper", "200", "2000"])
    time.sleep(4)
    for f in ("sched", "tasks"):
        show(f"{D}/{f}", read(f"{D}/{f}"))
    print()
    print("==> the kernel's own counts (/proc/<pid>/status, counted from fork; ours from attach) <==")
    for p in (hog, sl):
        comm, vol, nonvol = status(p.pid)
        print(f"{p.pid:>8} {comm:<16} voluntary_ctxt_switches {vol:>6} nonvoluntary_ctxt_switches {nonvol:>6}")
    for p in (hog, sl, rival):
        p.kill()
    for p in (hog, sl, rival):
        p.wait()
    c.check("attached tasks gone after they exit", sum(1 for l in read(f"{D}/tasks").split("\n") if l) == 1)

    # The same through the user-side tool: a command's numbers, as perf stat prints them.
    tool = f"{g.repo}/tools/resched/target/release/resched"
    cmd = [tool, "stat", "--", g.load, "busypong", "0", "1", "500"]
    print()
    print(f"==> {' '.join(cmd[:3])} rrp-load busypong 0 1 500 <==", flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    sys.stdout.write(r.stdout + r.stderr)
    c.check("resched stat around a busy ping-pong", r.returncode == 0 and "seconds time elapsed" in r.stdout)
    c.check(f"rmmod {KO_NAME}", rmmod())
