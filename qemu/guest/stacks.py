# SPDX-License-Identifier: GPL-2.0
"""Stack attribution checks, run with the module loaded: off by default, the wakeup and membarrier
paths found under load, stack counts + dropped == hits, disabling stops them, a tiny table fills and
drops, bad input refused, 1-byte reads, reset."""

import errno
import os
import re
import subprocess
import time
from itertools import zip_longest

from lib import (D, PREFIX, dmesg, lazy_fair, module_tags, one_byte_reads, online_cpus, parse_table, read, resched_function, run,
                 ttwu_queue, write_errno)

N_PING = 1500
N_MB = 300
# The function each tag's kprobe sits on, where its stacks start: a statement of the expected output.
# A tag counted from a tracepoint (`via=tracepoint` in `probes`) has stacks that start in the function
# that fired the tracepoint: kernel code, never the module's own frames or the tracepoint's iterator.
PROBED = {"RES": "native_smp_send_reschedule", "CFS": "native_send_call_func_single_ipi",
          "CFM": "native_send_call_func_ipi", "RSC": resched_function(), "WKL": "ttwu_queue_wakelist"}


def via():
    """{tag: mechanism} from the module's `probes`."""
    return {l.split()[0]: dict(kv.split("=") for kv in l.split()[3:]).get("via")
            for l in read(f"{D}/probes").splitlines()}


def starts_right(tag, mech, frames):
    """Whether a stack of `tag` starts where its mechanism says."""
    if mech == "tracepoint":
        # The module's own frames are skipped; deeper ones may be its own (an IPI sent by its code).
        return not frames[0].startswith("__traceiter_") and "[resched_probe]" not in frames[0]
    return frames[0].startswith(PROBED[tag] + "+")
HEADER = re.compile(r"^(\w+) stacks: (\d+) of (\d+) entries used, (\d+) dropped, recording (on|off)$")
FRAME = re.compile(r"^        (\S+\+0x[0-9a-f]+( \[\w+\])?|\?)$")
COUNT = re.compile(r"^    (\d+) hits on CPUs ([0-9,-]+)$")


def parse_stacks(text):
    """{"tag", "used", "capacity", "dropped", "on", "stacks": [(frames, count, cpus)], "bad": [lines]}."""
    lines = text.splitlines()
    m = HEADER.match(lines[0]) if lines else None
    if not m:
        return {"bad": lines[:1] or ["(empty)"], "stacks": []}
    res = {"tag": m.group(1), "used": int(m.group(2)), "capacity": int(m.group(3)),
           "dropped": int(m.group(4)), "on": m.group(5) == "on", "stacks": [], "bad": []}
    frames = []
    for line in lines[1:]:
        if line == "":
            frames = []
        elif FRAME.match(line):
            frames.append(line.strip())
        elif COUNT.match(line):
            n, cpus = COUNT.match(line).groups()
            res["stacks"].append((frames, int(n), cpus))
            if not frames:
                res["bad"].append(f"a count without frames: {line}")
            frames = []
        else:
            res["bad"].append(line)
    return res


def stacks(tag):
    return parse_stacks(read(f"{D}/stacks/{tag}"))


def recorded(s):
    return sum(n for _, n, _ in s["stacks"]) + s["dropped"]


def hits(tag):
    """What the stacks of `tag` count: the probe's hits (`probes`); for WKL the queued wakeups (the
    WKL row of `ipi`: with the kretprobe fallback, `hits` are all calls, and the stacks are taken at entry
    and kept when the call returns true)."""
    if tag == "WKL":
        return sum(parse_table(read(f"{D}/ipi"))[1]["WKL"].values())
    for line in read(f"{D}/probes").splitlines():
        if line.split()[0] == tag:
            return int(dict(kv.split("=") for kv in line.split()[3:])["hits"])
    raise KeyError(tag)


def cpu_set(text):
    """The CPUs of a list like `0-1,3`."""
    out = set()
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit():
            out |= set(range(int(lo), int(hi or lo) + 1))
    return out


def consistent(tag, tries=60):
    """Whether the stack counts + dropped of `tag` equal its hits: ((hits, recorded, hits after), agree,
    text). Read back to back, retried while the system's own activity moves the hits; where they never
    stand still (on PREEMPT_RT the per-CPU threads woken at every tick make RSC requests), the stacks
    read between two readings of the hits must lie between them, less the handlers in flight (a handler
    counts its hit, then records its stack: at most one per context on each CPU)."""
    for _ in range(tries):
        h1 = hits(tag)
        r = recorded(stacks(tag))
        h2 = hits(tag)
        if h1 == h2:
            return (h1, r, h2), r == h1, f"{r} == {h1}"
        time.sleep(0.02)
    in_flight = 4 * len(online_cpus())
    return (h1, r, h2), h1 - in_flight <= r <= h2, f"{r} within {h1} - {in_flight}..{h2}, never still"


def setw(name, data):
    return write_errno(f"{D}/{name}", data)


def load(g):
    """Busy ping-pong 0-1 (reschedule IPIs), idle ping-pong 2-3 (wakelist, call-function-single IPIs),
    then membarrier from CPU0 (call-function IPIs to many)."""
    ps = [subprocess.Popen([g.load, "busypong", "0", "1", str(N_PING)], stdout=subprocess.DEVNULL),
          subprocess.Popen([g.load, "pingpong", "2", "3", str(N_PING)], stdout=subprocess.DEVNULL)]
    rcs = [p.wait(timeout=600) for p in ps]
    mb = run([g.load, "membarrier", str(N_MB)])
    return rcs == [0, 0] and mb.returncode == 0


def top_has(s, tag, func, k=1):
    """One of the `k` most counted stacks of `tag` in `s` passes through `func`."""
    return any(any(f.startswith(func + "+") for f in fr) for fr, _, _ in s[tag]["stacks"][:k])


def main(c, g):
    # What the module offers, from the module: one stacks/<tag> file per probe.
    tags = module_tags()

    # --- The files, off by default ------------------------------------------------------------------------
    modes = {"stacks_enable": 0o600, "stacks_capacity": 0o600, **{f"stacks/{t}": 0o400 for t in tags}}
    bad = [f"{n}: {os.stat(f'{D}/{n}').st_mode & 0o777:o}" if os.path.exists(f"{D}/{n}") else f"{n} missing"
           for n, m in modes.items()
           if not os.path.exists(f"{D}/{n}") or os.stat(f"{D}/{n}").st_mode & 0o777 != m]
    c.check(f"stacks_enable, stacks_capacity (mode 600) and stacks/{' '.join(tags)} (mode 400) exist",
            not bad, "\n".join(bad))
    c.check("stacks_enable reads 0 at load", read(f"{D}/stacks_enable") == "0\n", read(f"{D}/stacks_enable"))
    capacity = int(read(f"{D}/stacks_capacity"))
    c.check(f"stacks_capacity reads the entries allocated at load ({capacity})", 16 <= capacity <= 65536)
    ok_load = load(g)
    s = {t: stacks(t) for t in tags}
    c.check("recording off: after a load every stack table is empty, nothing dropped, header says off",
            ok_load and all(s[t].get("used") == 0 and s[t].get("dropped") == 0 and not s[t]["stacks"]
                            and s[t].get("on") is False and s[t].get("capacity") == capacity for t in tags),
            "\n".join(read(f"{D}/stacks/{t}").splitlines()[0] for t in tags))

    # --- On, under load -------------------------------------------------------------------------------------
    c.check("stacks_enable <- '1' accepted, reads 1", setw("stacks_enable", b"1") == 0
            and read(f"{D}/stacks_enable") == "1\n")
    setw("reset", b"1")
    ok_load = load(g)
    s = {t: stacks(t) for t in tags}
    for t in tags:
        print(f"# {read(f'{D}/stacks/{t}').splitlines()[0]}")
        for frames, n, cpus in s[t]["stacks"][:2]:
            print(f"#   {n} on CPUs {cpus}: " + " <- ".join(frames[:7]))
    c.check("load ran with recording on", ok_load)
    c.check("every stacks file parses: header, frames as function+0xoff, counts with CPUs",
            all(not s[t]["bad"] and s[t].get("tag") == t for t in tags),
            "\n".join(f"{t}: {s[t]['bad'][:3]}" for t in tags if s[t]["bad"]))
    # Without TTWU_QUEUE (PREEMPT_RT) no wakeup is queued on a wakelist: WKL has nothing to record.
    queued = ttwu_queue()
    loaded = [t for t in tags if t != "WKL" or queued]
    c.check(f"each tag recorded stacks under the load ({' '.join(loaded)}; "
            f"{'WKL too' if queued else 'WKL none: NO_TTWU_QUEUE'}), sorted by count, most first",
            all(s[t]["stacks"] and [n for _, n, _ in s[t]["stacks"]] ==
                sorted((n for _, n, _ in s[t]["stacks"]), reverse=True) for t in loaded)
            and (queued or not s["WKL"]["stacks"]),
            "\n".join(f"{t}: {len(s[t]['stacks'])} stacks" for t in tags))
    mech = via()
    c.check("each stack starts at the probed function (kprobes) or in the function that fired the "
            "tracepoint, never in the module (innermost first)",
            all(starts_right(t, mech.get(t), fr) for t in tags for fr, _, _ in s[t]["stacks"]),
            "\n".join(f"{t}: {s[t]['stacks'][0][0][:2]}" for t in tags if s[t]["stacks"]))
    if mech.get("RES") == "tracepoint":
        c.check(f"busy ping-pong: the most counted RES stack starts in {PROBED['RSC']} (smp_send_reschedule "
                "fires ipi_send_cpu there)",
                bool(s["RES"]["stacks"]) and s["RES"]["stacks"][0][0][0].startswith(PROBED["RSC"] + "+"),
                str(s["RES"]["stacks"][:1]))

    c.check("busy ping-pong: the most counted RES stack comes through the wakeup path (try_to_wake_up)",
            top_has(s, "RES", "try_to_wake_up"), str(s["RES"]["stacks"][:1]))
    if queued:
        c.check("wakelist: the most counted WKL stack comes through try_to_wake_up",
                top_has(s, "WKL", "try_to_wake_up"), str(s["WKL"]["stacks"][:1]))
    else:
        print("# wakelist stacks: not checked (NO_TTWU_QUEUE: no wakeup is queued)")
    mb_stacks = [(fr, n) for t in ("CFM", "CFS") for fr, n, _ in s[t]["stacks"]
                 if any("membarrier" in f for f in fr)]
    c.check(f"membarrier: CFM/CFS stacks through membarrier count >= {N_MB // 10} "
            f"({sum(n for _, n in mb_stacks)} in {len(mb_stacks)} stacks)",
            sum(n for _, n in mb_stacks) >= N_MB // 10, str(s["CFM"]["stacks"][:1]))
    # The load's reschedule IPIs: the busy ping-pong's from CPUs 0-1 (not where wakeup preemption is
    # lazy), the idle ping-pong's from 2-3 where remote wakeups are not queued (NO_TTWU_QUEUE).
    senders = (set() if lazy_fair() else {0, 1}) | (set() if queued else {2, 3})
    c.check(f"the CPUs a stack was seen on include the sending CPUs of the load (RES: {sorted(senders)})",
            any(cpu_set(cpus) & senders for fr, _, cpus in s["RES"]["stacks"][:3]), str(s["RES"]["stacks"][:3]))
    c.check("no raw kernel addresses in the stacks files",
            not any(re.search(r"ffff[0-9a-f]{12}", read(f"{D}/stacks/{t}")) for t in tags))
    for t in tags:
        _, agree, text = consistent(t)
        c.check(f"{t}: stack counts + dropped == hits ({text})", agree)

    # --- Off: the stacks stop, the counters go on ---------------------------------------------------------
    c.check("stacks_enable <- '0' accepted, reads 0", setw("stacks_enable", b"0\n") == 0
            and read(f"{D}/stacks_enable") == "0\n")
    before = {t: recorded(stacks(t)) for t in tags}
    hits_before = {t: hits(t) for t in tags}
    ok_load = load(g)
    after = {t: recorded(stacks(t)) for t in tags}
    hits_after = {t: hits(t) for t in tags}
    c.check("recording off: stack counts stay as they were", ok_load and after == before, f"{before} -> {after}")
    c.check(f"recording off: the per-CPU counters keep counting ({' '.join(loaded)} hits grow)",
            all(hits_after[t] > hits_before[t] for t in loaded), f"{hits_before} -> {hits_after}")
    for t in ("RSC", "WKL"):
        big = read(f"{D}/stacks/{t}")
        small = one_byte_reads(f"{D}/stacks/{t}")
        c.check(f"stacks/{t} ({len(big)} bytes): 1-byte reads return what one large read returns", small == big)

    # --- Bad input: an error, nothing changed -----------------------------------------------------------------
    BAD_ENABLE = [b"", b"2", b"01", b" 1", b"1 ", b"\t1", b"true", b"on", b"-1", b"1\n\n", b"1\r\n", b"\0",
                  b"1\0", b"x" * 64, b"x" * 65, b"0x1"]
    BAD_CAPACITY = [b"", b"0", b"-1", b"+4", b"04", b"4 ", b" 4", b"4\n\n", b"1.5", b"abc", b"0x10",
                    str(capacity + 1).encode(), b"99999999999999999999", b"\xff", b"4\0"]
    state = {t: stacks(t) for t in tags}
    hits0 = sum(hits(t) for t in tags)
    bad = []
    # The two files' writes alternate, so that each has some among the first few: the log of bad input
    # is rate-limited.
    for enable, cap in zip_longest(BAD_ENABLE, BAD_CAPACITY):
        if enable is not None:
            e = setw("stacks_enable", enable)
            if e != errno.EINVAL or read(f"{D}/stacks_enable") != "0\n":
                bad.append(f"stacks_enable <- {enable[:20]!r}: errno {e}, now {read(f'{D}/stacks_enable')!r}")
        if cap is not None:
            e = setw("stacks_capacity", cap)
            if e != errno.EINVAL or int(read(f"{D}/stacks_capacity")) != capacity:
                bad.append(f"stacks_capacity <- {cap[:20]!r}: errno {e}, now {read(f'{D}/stacks_capacity')!r}")
    e = write_errno(f"{D}/stacks_enable", b"1", seek=1)
    if e != errno.EINVAL or read(f"{D}/stacks_enable") != "0\n":
        bad.append(f"stacks_enable <- '1' at offset 1: errno {e}")
    kept = {t: stacks(t) for t in tags}
    c.check(f"{len(BAD_ENABLE) + len(BAD_CAPACITY) + 1} malformed writes to stacks_enable/stacks_capacity: "
            "EINVAL, settings and stack tables unchanged",
            not bad and all(kept[t]["stacks"] == state[t]["stacks"] and kept[t]["dropped"] == state[t]["dropped"]
                            for t in tags) and sum(hits(t) for t in tags) >= hits0, "\n".join(bad))
    c.check("bad stacks_enable and stacks_capacity input is logged",
            f"{PREFIX}stacks_enable: expected" in dmesg() and f"{PREFIX}stacks_capacity: expected" in dmesg())

    # --- A tiny table fills and drops ---------------------------------------------------------------------------
    setw("stacks_enable", b"1")
    e = setw("stacks_capacity", b"2")
    c.check("stacks_capacity <- '2' while recording: EBUSY, unchanged",
            e == errno.EBUSY and int(read(f"{D}/stacks_capacity")) == capacity, f"errno {e}")
    setw("stacks_enable", b"0")
    e = setw("stacks_capacity", b"2\n")
    c.check("stacks_capacity <- '2' while off: accepted, reads 2, tables emptied",
            e == 0 and read(f"{D}/stacks_capacity") == "2\n" and all(stacks(t)["used"] == 0 for t in tags),
            f"errno {e}")
    # Recording on, then the reset: the window that starts with it records every hit.
    setw("stacks_enable", b"1")
    setw("reset", b"1")
    ok_load = load(g)
    s = {t: stacks(t) for t in tags}
    many = [t for t in ("RSC", "WKL") if t in loaded]
    c.check(f"tiny table: no tag uses more than 2 entries; {' and '.join(many)} (many distinct stacks) dropped hits",
            ok_load and all(s[t]["used"] <= 2 and len(s[t]["stacks"]) <= 2 for t in tags)
            and all(s[t]["dropped"] > 0 for t in many),
            "\n".join(read(f"{D}/stacks/{t}").splitlines()[0] for t in tags))
    for t in ("RSC", "WKL"):
        _, agree, text = consistent(t)
        c.check(f"tiny table: {t} stack counts + dropped == hits ({text})", agree)
    setw("stacks_enable", b"0")

    # --- reset empties the tables ---------------------------------------------------------------------------------
    c.check("reset <- '1' empties every stack table and zeroes dropped",
            setw("reset", b"1") == 0 and all(stacks(t)["used"] == 0 and stacks(t)["dropped"] == 0 and
                                              not stacks(t)["stacks"] for t in tags))
    setw("stacks_capacity", str(capacity).encode())
    c.check("stacks_capacity restored", int(read(f"{D}/stacks_capacity")) == capacity)
