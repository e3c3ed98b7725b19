# SPDX-License-Identifier: GPL-2.0
"""What interrupts a CPU (noise/), on x86 and arm64 (where the IPIs are /proc/interrupts' IPIn lines, the
timer is a device interrupt, arch_timer, and TLB shootdowns are broadcast instructions, not IPIs): threads pinned on CPU 3, a device interrupt moved there and away
through /proc/irq/N/smp_affinity_list, membarrier IPIs and TLB shootdowns from CPU 0; each source counted on CPU 3
against the kernel's own counts over the same window (/proc/interrupts per line and CPU, /proc/softirqs),
the queued function ipi_mb against kprobe events on it (count, and its time between the kprobe/kretprobe
pair inside ours and the call-function vectors' handlers around it, tracefs events), noise/summary against
noise/cpu3."""

import bisect
import os
import re
import subprocess
import time

from lib import D, online_cpus, read, tracefs, write_errno

CPU = 3
X86 = os.uname().machine == "x86_64"
TRACING = "/sys/kernel/tracing"
VECTORS = ("LOC", "RES", "CAL", "IWI")


def rows(text):
    """The table of a noise/cpuN file: {key: (count, time_ns, max_ns)}, the key the label, or
    ("CSD", function) for the queued calls, ("TASK", name) for the kernel threads."""
    out, inside = {}, False
    for line in text.splitlines():
        if line.startswith("source"):
            inside = True
            continue
        if not inside:
            continue
        if not line.strip():
            break
        f = line.split()
        key = (f[0], f[6]) if f[0] in ("CSD", "TASK") else f[0]
        out[key] = (int(f[1]), int(f[2]), int(f[4]))
    return out


# The vectors by what /proc/interrupts says they are: x86's lines RES, CAL, IWI; arm64's IPI0, IPI1, IPI5.
ALIASES = {"Rescheduling interrupts": "RES", "Function call interrupts": "CAL", "IRQ work interrupts": "IWI"}


def kernel_counts(cpu=None):
    """The kernel's counts on CPU (or `cpu`): {label: n} from /proc/interrupts (numbered lines and the
    vectors, arm64's IPIs under x86's names) and /proc/softirqs (by name)."""
    cpu = CPU if cpu is None else cpu
    counts = {}
    lines = read("/proc/interrupts").splitlines()
    ncpus = len(lines[0].split())
    col = lines[0].split().index(f"CPU{cpu}")
    for line in lines[1:]:
        f = line.split()
        if f and f[0].endswith(":") and len(f) > col + 1 and f[col + 1].isdigit():
            counts[f[0][:-1]] = int(f[col + 1])
            alias = ALIASES.get(" ".join(f[ncpus + 1:]))
            if alias:
                counts[alias] = int(f[col + 1])
    lines = read("/proc/softirqs").splitlines()
    col = lines[0].split().index(f"CPU{cpu}")
    for line in lines[1:]:
        f = line.split()
        if f and len(f) > col + 1:
            counts[f[0].rstrip(":")] = int(f[col + 1])
    return counts


def timer_key():
    """The local timer's key in kernel_counts() and in our rows: x86's LOC vector, or arm64's per-CPU
    device interrupt `arch_timer` (its number)."""
    if X86:
        return "LOC"
    for line in read("/proc/interrupts").splitlines()[1:]:
        f = line.split()
        if f and f[0][:-1].isdigit() and "arch_timer" in line:
            return f[0][:-1]
    return "LOC"


def drive_io(g, n=200):
    """Writes, syncs, stats and reads back a small file in the output folder, a host folder shared with the
    guest over virtio: each a request to the host, answered by an interrupt of its device."""
    path = f"{g.out}/rrp-noise-io"
    for i in range(n):
        with open(path, "wb") as f:
            f.write(str(i).encode())
            f.flush()
            os.fsync(f.fileno())
        os.stat(path)
    os.unlink(path)


def busiest_virtio_irq(g):
    """The virtio interrupt line that moves most while drive_io() runs, as its number."""
    def per_line():
        return {f[0][:-1]: sum(int(x) for x in f[1:] if x.isdigit())
                for f in (l.split() for l in read("/proc/interrupts").splitlines()[1:])
                if f and f[0][:-1].isdigit() and "virtio" in " ".join(f)}
    before = per_line()
    drive_io(g, 50)
    after = per_line()
    moved = sorted(((after.get(k, 0) - n, k) for k, n in before.items()), reverse=True)
    return moved[0][1] if moved and moved[0][0] > 0 else None


def window(g, irq, oracle):
    """One window on CPU: the kernel's counts before and after the reset, the load, the kernel's counts,
    noise/cpu3 and noise/summary, the kernel's counts again (all read here: a new process sends IPIs).
    Returns (p0, p1, q0, ours, summary, q1, marked trace)."""
    if oracle:
        tracefs("trace", "")
        tracefs("tracing_on", "1")
        tracefs("trace_marker", "RRP_BEFORE_RESET")
    p0 = kernel_counts()
    write_errno(f"{D}/reset", b"1")
    p1 = kernel_counts()
    if oracle:
        tracefs("trace_marker", "RRP_AFTER_RESET")
    # CPU 3's workload is the loads' own threads: membarrier's spinner there, then the shootdown's.
    mb = subprocess.Popen([g.load, "membarrier", "400"], stdout=subprocess.DEVNULL)
    drive_io(g)
    mb.wait(timeout=300)
    # TLB shootdowns: a thread of the same process spins on CPU 3 while CPU 0 unmaps pages (x86: IPIs
    # running flush_tlb_func there, only while that thread runs there: nothing else shares CPU 3 now;
    # arm64 flushes other CPUs' TLBs by broadcast instructions, no IPI).
    subprocess.run([g.load, "shootdown", "0", str(CPU), "1000"], stdout=subprocess.DEVNULL, timeout=300)
    time.sleep(0.5)
    if oracle:
        tracefs("trace_marker", "RRP_READ")
    q0 = kernel_counts()
    g.pairs0 = read(f"{D}/pairs")
    before = read(f"{D}/noise/cpu{CPU}")
    summary = read(f"{D}/noise/summary")
    ours = read(f"{D}/noise/cpu{CPU}")
    g.pairs1 = read(f"{D}/pairs")
    q1 = kernel_counts()
    trace = ""
    if oracle:
        tracefs("trace_marker", "RRP_END")
        tracefs("tracing_on", "0")
        trace = read(f"{TRACING}/trace")
    return p0, p1, q0, before, summary, ours, q1, trace


def sent(text):
    """The `sent KIND CPU<s> COUNT` lines of a noise/cpuN file: {(kind, sender): count}."""
    return {(m.group(1), int(m.group(2))): int(m.group(3))
            for m in re.finditer(r"^sent\s+(\w+)\s+CPU(\d+)\s+(\d+)$", text, re.M)}


def pairs_to(text, target):
    """The lines of `pairs` whose target is `target`: {(kind, sender): count}."""
    out = {}
    for line in text.splitlines():
        f = line.split()
        if len(f) == 4 and f[0].isdigit() and f[3] == f"CPU{target}" and f[2].startswith("CPU"):
            out[(f[1], int(f[2][3:]))] = int(f[0])
    return out


def senders_part(c, g, text):
    """noise/cpu3's senders: each line between the `pairs` read before and after it, the most frequent
    per kind; TLB shootdowns and membarrier from CPU 0 make CPU 0 its main call-function sender."""
    got, p0, p1 = sent(text), pairs_to(g.pairs0, CPU), pairs_to(g.pairs1, CPU)
    bad = [f"{k}: {n} not in {p0.get(k, 0)}..{p1.get(k, 0)}" for k, n in got.items()
           if not p0.get(k, 0) <= n <= p1.get(k, 0)]
    for kind in {k for k, _ in p1}:
        if kind not in ("RES", "CFS", "CFM", "WKL"):
            continue
        top = sorted((n for (k, _), n in p0.items() if k == kind), reverse=True)[:4]
        mine = sorted((n for (k, _), n in got.items() if k == kind), reverse=True)
        if len(mine) < min(4, len(top)) or (top and mine and mine[0] < top[0]):
            bad.append(f"{kind}: ours {mine}, pairs' most {top}")
    c.check(f"noise/cpu{CPU}'s senders: {len(got)} lines, each between two readings of pairs, the most "
            "frequent per kind", bool(got) and not bad, "; ".join(bad))
    cal0 = got.get(("CFS", 0), 0) + got.get(("CFM", 0), 0)
    c.check(f"CPU 0 (membarrier, TLB shootdowns) sent CPU {CPU} its call-function IPIs: CFS+CFM {cal0}",
            cal0 >= 100 and cal0 == max(got.get(("CFS", s), 0) + got.get(("CFM", s), 0) for _, s in got))


def against_kernel(c, what, p0, p1, q0, ours, q1, keys):
    """Each key's count on CPU: between the kernel's count over the window's inside (after the reset to
    before the read) and over its outside (before the reset to after the read), but for one interruption in
    progress on CPU 3 at either end (counted by the kernel inside its handler, by us at its exit)."""
    bad, shown = [], []
    for key in keys:
        low, high = q0.get(key, 0) - p1.get(key, 0), q1.get(key, 0) - p0.get(key, 0)
        n = ours.get(key, (0, 0, 0))[0]
        shown.append(f"{key} {n} ({low}..{high})")
        if not low - 1 <= n <= high + 1:
            bad.append(f"{key}: ours {n}, the kernel's {low}..{high}")
    c.check(what + ": " + ", ".join(shown), not bad, "; ".join(bad))


def marked(trace, start, end):
    """The lines of `trace` between the markers `start` and `end`."""
    out, inside = [], False
    for line in trace.splitlines():
        if "tracing_mark_write" in line:
            if line.rstrip().endswith(start):
                inside = True
            elif line.rstrip().endswith(end):
                break
            continue
        if inside:
            out.append(line)
    return out


def function_at(addrs, addr):
    """The name of the kernel function containing `addr`, from `addrs` (sorted (address, name) of
    /proc/kallsyms' text symbols)."""
    i = bisect.bisect_right(addrs, (addr, "\uffff")) - 1
    return addrs[i][1] if i >= 0 else "?"


def text_symbols():
    """/proc/kallsyms' text symbols, sorted (address, name)."""
    out = []
    for line in read("/proc/kallsyms").splitlines():
        f = line.split()
        if len(f) >= 3 and f[1] in "tT":
            out.append((int(f[0], 16), f[2]))
    return sorted(out)


def oracle_calls(lines, entry="rrp_nmb", ret="rrp_nmbr", queued_only=None):
    """(count, durations in ns) of a function on CPU from its kprobe (`entry`) and kretprobe (`ret`)
    events: each return paired with the entry before it on the CPU. With `queued_only` (the kernel's text
    symbols), only the calls whose caller (`caller=`) is the queue's flush: the queued ones."""
    count, durations, start = 0, [], None
    for line in lines:
        m = re.search(r"\[(\d+)\].*?\s(\d+)\.(\d+): (rrp_\w+):", line)
        if not m or int(m.group(1)) != CPU:
            continue
        if queued_only is not None:
            caller = re.search(r"caller=(0x[0-9a-f]+)", line)
            if not caller or function_at(queued_only, int(caller.group(1), 16)) != "__flush_smp_call_function_queue":
                continue
        t = int(m.group(2)) * 1_000_000_000 + int(m.group(3).ljust(9, "0"))
        if m.group(4) == entry:
            count += 1
            start = t
        elif m.group(4) == ret and start is not None:
            durations.append(t - start)
            start = None
    return count, durations


# The tracefs events of the call-function vectors' handlers on CPU (x86's irq_vectors, arm64's ipi_entry
# and ipi_exit of IPI1): an interval that holds every queued call run there from an IPI, ours included.
VECTOR_EVENTS = (("irq_vectors/call_function_entry", "irq_vectors/call_function_exit",
                  "irq_vectors/call_function_single_entry", "irq_vectors/call_function_single_exit")
                 if X86 else ("ipi/ipi_entry", "ipi/ipi_exit"))


def enclosing(lines, call="rrp_nmb"):
    """The call-function vector intervals on CPU that hold a call of `call` (its kprobe event), as
    durations in ns, and how many calls of it came outside any (run by the CPU's idle loop, say)."""
    held, outside, start, has_call = [], 0, None, False
    for line in lines:
        m = re.search(r"\[(\d+)\].*?\s(\d+)\.(\d+): (\w+):(.*)", line)
        if not m or int(m.group(1)) != CPU:
            continue
        t = int(m.group(2)) * 1_000_000_000 + int(m.group(3).ljust(9, "0"))
        event, rest = m.group(4), m.group(5)
        if not X86 and event in ("ipi_entry", "ipi_exit") and "Function call" not in rest:
            continue
        if event in ("call_function_entry", "call_function_single_entry", "ipi_entry"):
            start, has_call = t, False
        elif event in ("call_function_exit", "call_function_single_exit", "ipi_exit"):
            if start is not None and has_call:
                held.append(t - start)
            start = None
        elif event == call:
            if start is None:
                outside += 1
            has_call = True
    return held, outside


def enable_part(c, g):
    """noise_enable: 0 unregisters the group (the counts stand still under load, the files say so), 1
    registers it again, anything else is EINVAL. Left off for a second under load: an interval begun
    before would end after it, over a second long (the window checks below look at each source's max)."""
    c.check("noise_enable is 1 at load", read(f"{D}/noise_enable").strip() == "1")
    e = write_errno(f"{D}/noise_enable", b"2\n")
    c.check("noise_enable refuses '2' with EINVAL, still 1", e == 22 and read(f"{D}/noise_enable").strip() == "1",
            f"errno {e}")
    e = write_errno(f"{D}/noise_enable", b"0\n")
    first = rows(read(f"{D}/noise/cpu{CPU}"))
    drive_io(g, 50)
    mb = subprocess.run([g.load, "membarrier", "100"], stdout=subprocess.DEVNULL)
    time.sleep(1)
    then = read(f"{D}/noise/cpu{CPU}")
    off = read(f"{D}/noise_enable").strip()
    c.check("noise_enable 0: the interruption probes go, the counts stand still under load, the files say so",
            e == 0 and off == "0" and rows(then) == first and mb.returncode == 0
            and "noise_enable is 0" in then and "noise_enable is 0" in read(f"{D}/noise/summary"),
            f"errno {e}, noise_enable {off}")
    e = write_errno(f"{D}/noise_enable", b"1\n")
    # membarrier IPIs CPU 3 too (isolated, with nohz_full, nothing else may interrupt it for seconds).
    subprocess.run([g.load, "membarrier", "20"], stdout=subprocess.DEVNULL)
    c.check("noise_enable 1: registered again, counting again",
            e == 0 and read(f"{D}/noise_enable").strip() == "1" and rows(read(f"{D}/noise/cpu{CPU}")) != first,
            f"errno {e}")


def main(c, g):
    possible = read("/sys/devices/system/cpu/possible").strip()
    n = int(possible.split("-")[-1]) + 1
    missing = [i for i in range(n) if not os.path.exists(f"{D}/noise/cpu{i}")]
    c.check(f"noise/summary and noise/cpuN for each of the {n} possible CPUs",
            os.path.exists(f"{D}/noise/summary") and not missing, f"missing: {missing[:10]}")
    if CPU not in online_cpus():
        c.check(f"CPU {CPU} online for the noise checks", False)
        return
    enable_part(c, g)
    irq = busiest_virtio_irq(g)
    c.check("a virtio interrupt moves while files are read (to move to CPU 3)", irq is not None)
    affinity = f"/proc/irq/{irq}/smp_affinity_list"
    old = read(affinity).strip() if irq else ""
    try:
        # kprobe events on ipi_mb (membarrier's function), entry and return: the oracle of its count and
        # its time, inside ours (csd_function_entry fires before the call, csd_function_exit after).
        tracefs("tracing_on", "0")
        tracefs("trace_clock", "mono")
        tracefs("buffer_size_kb", "4096")
        tracefs("kprobe_events", "p:rrp_nmb ipi_mb\n", append=True)
        tracefs("kprobe_events", "r:rrp_nmbr ipi_mb\n", append=True)
        for e in ("kprobes/rrp_nmb", "kprobes/rrp_nmbr") + VECTOR_EVENTS:
            tracefs(f"events/{e}/enable", "1")
        if X86:
            # flush_tlb_func also runs as a CPU's call of its own function (its own flushes: no csd, not
            # an interruption, not counted by us): the caller tells them apart (the return address at
            # entry, in __flush_smp_call_function_queue for the queued calls).
            tracefs("kprobe_events", "p:rrp_ntlb flush_tlb_func caller=$stack0:x64\n", append=True)
            tracefs("events/kprobes/rrp_ntlb/enable", "1")
        e = write_errno(affinity, f"{CPU}\n".encode()) if irq else -1
        c.check(f"IRQ {irq} moved to CPU {CPU} (/proc/irq/{irq}/smp_affinity_list, was {old})", e == 0, f"errno {e}")
        p0, p1, q0, before, summary, text, q1, trace = window(g, irq, True)
    finally:
        try:
            tracefs("tracing_on", "0")
            for e in ("kprobes/rrp_nmb", "kprobes/rrp_nmbr") + (("kprobes/rrp_ntlb",) if X86 else ()) + VECTOR_EVENTS:
                tracefs(f"events/{e}/enable", "0")
            tracefs("kprobe_events", "")
        except OSError:
            pass
    ours = rows(text)
    print("\n\n".join(text.split("\n\n")[:2]))
    long = [f"{k}: {v[2]} ns" for k, v in ours.items() if v[2] >= 1_000_000_000]
    c.check("no interval of the window lasted a second (none spans the second noise_enable was 0)", not long,
            ", ".join(map(str, long)))
    keys = [k for k in VECTORS if k in p0] + ([] if X86 else [timer_key()]) + ([str(irq)] if irq else [])
    against_kernel(c, f"CPU {CPU}'s interruptions by line equal /proc/interrupts over the window", p0, p1, q0,
                   ours, q1, keys)
    c.check(f"IRQ {irq} interrupted CPU {CPU} while it was there (/proc/interrupts moved, and ours)",
            q0.get(str(irq), 0) - p1.get(str(irq), 0) > 0 and ours.get(str(irq), (0,))[0] > 0)
    softirqs = [k for k in ("HI", "TIMER", "NET_TX", "NET_RX", "BLOCK", "IRQ_POLL", "TASKLET", "SCHED", "HRTIMER",
                            "RCU") if k in p0]
    against_kernel(c, f"CPU {CPU}'s softirqs equal /proc/softirqs over the window", p0, p1, q0, ours, q1, softirqs)
    c.check("the rows name their device interrupt as /proc/interrupts does",
            re.search(rf"^{irq}\s.*IRQ virtio\S*", text, re.M) is not None)

    # ipi_mb: our count against the kprobe events on CPU 3 (inside: after the reset to the read; outside:
    # before the reset to after it), and its time: each call's kprobe/kretprobe pair lies inside ours.
    low, d_low = oracle_calls(marked(trace, "RRP_AFTER_RESET", "RRP_READ"))
    high, d_high = oracle_calls(marked(trace, "RRP_BEFORE_RESET", "RRP_END"))
    mine = ours.get(("CSD", "ipi_mb"), (0, 0, 0))
    c.check(f"ipi_mb run on CPU {CPU}: ours {mine[0]}, kprobe events {low}..{high}",
            low > 100 and low - 1 <= mine[0] <= high + 1)
    if X86:
        symbols = text_symbols()
        low, _ = oracle_calls(marked(trace, "RRP_AFTER_RESET", "RRP_READ"), "rrp_ntlb", queued_only=symbols)
        high, _ = oracle_calls(marked(trace, "RRP_BEFORE_RESET", "RRP_END"), "rrp_ntlb", queued_only=symbols)
        allcalls, _ = oracle_calls(marked(trace, "RRP_AFTER_RESET", "RRP_READ"), "rrp_ntlb")
        print(f"# flush_tlb_func on CPU {CPU}: {allcalls} calls, {low} of them queued (the others its own)")
        mine = ours.get(("CSD", "flush_tlb_func"), (0, 0, 0))
        c.check(f"TLB shootdowns: flush_tlb_func run on CPU {CPU}: ours {mine[0]}, kprobe events {low}..{high}",
                low >= 100 and low - 1 <= mine[0] <= high + 1)
    hist = re.search(r"^@CSD \(ipi_mb\) ns: count (\d+), sum (\d+) ns, min (\d+) ns, max (\d+) ns", text, re.M)
    if hist and d_low and d_high:
        ours_min, ours_sum = int(hist.group(3)), int(hist.group(2))
        print(f"# ipi_mb on CPU {CPU}: ours sum {ours_sum} ns, min {ours_min} ns; kprobe pair sum {sum(d_low)} ns "
              f"(inside), min {min(d_high)} ns (outside)")
        c.check(f"ipi_mb's time holds the kprobe/kretprobe pair's: min {ours_min} >= {min(d_high)} ns, sum "
                f"{ours_sum} >= {sum(d_low) - max(d_low)} ns", ours_min >= min(d_high)
                and ours_sum >= sum(d_low) - max(d_low))
        # Above: the call-function vectors' handlers that ran ipi_mb (tracefs events of other
        # tracepoints than ours), which hold our intervals.
        held, outside = enclosing(marked(trace, "RRP_BEFORE_RESET", "RRP_END"))
        ours_max = int(hist.group(4))
        print(f"# ipi_mb on CPU {CPU}: the vectors' handlers that ran it: {len(held)}, sum {sum(held)} ns, max "
              f"{max(held, default=0)} ns; calls outside one: {outside}")
        c.check(f"ipi_mb's time lies inside the call-function vectors' handlers that ran it: sum {ours_sum} <= "
                f"{sum(held)} ns, max {ours_max} <= {max(held, default=0)} ns", outside == 0 and held
                and ours_sum <= sum(held) and ours_max <= max(held), f"{outside} calls outside a handler")
    else:
        c.check("ipi_mb's time and the kprobe pair's read", False, f"hist {bool(hist)}, pairs {len(d_low)}")

    senders_part(c, g, text)

    # noise/summary's line for CPU 3, read between two readings of noise/cpu3: its count and time between
    # theirs.
    def totals(t):
        m = re.search(r"^# taken: (\d+) ns .* in (\d+) interruptions", t, re.M)
        return (int(m.group(2)), int(m.group(1))) if m else (-1, -1)
    line = [l.split() for l in summary.splitlines() if l.split()[:1] == [str(CPU)]]
    got = (int(line[0][1]), int(line[0][2])) if line else (-1, -1)
    lo, hi = totals(before), totals(text)
    c.check(f"noise/summary's CPU {CPU} ({got[0]} interruptions, {got[1]} ns) lies between two readings of "
            f"noise/cpu{CPU}", all(a <= b <= h for a, b, h in zip(lo, got, hi)), f"{lo} {got} {hi}")

    # Moved away (to CPUs 0-2; the original affinity, often every CPU, may keep it on CPU 3): the device's
    # interrupts leave CPU 3, the kernel's count and ours. Then its affinity as it was.
    away = ",".join(str(x) for x in online_cpus() if x != CPU)
    e = write_errno(affinity, f"{away}\n".encode()) if irq else -1
    drive_io(g, 20)
    p0, p1, q0, _, _, text, q1, _ = window(g, irq, False)
    ours = rows(text)
    if irq:
        write_errno(affinity, f"{old}\n".encode())
    against_kernel(c, f"IRQ {irq} moved away to CPUs {away}: on CPU {CPU} ours equals /proc/interrupts", p0, p1, q0,
                   ours, q1, [str(irq)])
    c.check(f"... and it no longer interrupts CPU {CPU} (0 on both sides)",
            e == 0 and q1.get(str(irq), 0) - p0.get(str(irq), 0) == 0 and str(irq) not in ours)
