# SPDX-License-Identifier: GPL-2.0
"""The user-side tool (tools/resched) against the module it reads: `show --json` and `stat` agree with
the files, `stat` returns CMD's exit code, `top` under a pseudo-terminal shows the load's rates and quits
on `q`, `export --prometheus` is accepted by promtool and served by a real node_exporter, and every
error is a message, never a panic."""

import errno
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import time
import urllib.request

from lib import D, TRACING, parse_table, read, run, tracefs, ttwu_queue, write_errno

N_PING = 1000
PORT = 9187
# Every file of the module, as saved for the tool's unit tests (tools/resched/tests/fixtures).
FILES = ["cpus", "ipi", "targets", "matrix", "pairs", "received", "sched", "tasks", "preempted_by",
         "preempted_by_exited",
         "latency/resched", "latency/ipi", "latency/wakeup", "latency/slices"]


def tables():
    """The counts the tool reports from `ipi`, `received` and `sched`, read in this process."""
    return {name: parse_table(read(f"{D}/{name}"))[1] for name in ("ipi", "received", "sched")}


def totals(t):
    # RCO and CCO are `sent - received`, not counts: they may go down.
    return {f"{name}/{row}": sum(v.values()) for name, rows in t.items() for row, v in rows.items()
            if row not in ("RCO", "CCO")}


def panicked(text):
    return "panicked" in text or "RUST_BACKTRACE" in text


def save_files(out):
    """Every file as the module prints it, for the tool's unit tests."""
    os.makedirs(f"{out}/files", exist_ok=True)
    for name in FILES:
        with open(f"{out}/files/{name.replace('/', '_')}", "w") as f:
            f.write(read(f"{D}/{name}"))


def top_session(tool, load, seconds, key=b"q"):
    """Runs `resched top -d 1` on a pseudo-terminal and, once it has drawn its first frame, `load` (if
    any) for `seconds`, then types `key`: (what it drew, its exit code or None if it did not quit, the
    load's output)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(tool, [tool, "top", "-d", "1"])
    # The key counts only once top runs in raw mode: wait for its first frame (starting it over 9p
    # under emulation can take seconds; the load starts then, so that it runs through every frame
    # after), then `seconds` more.
    p = None
    drawn, end, started = b"", time.time() + 60, False
    while time.time() < end:
        if not started and b"resched top" in drawn:
            started, end = True, time.time() + seconds
            p = subprocess.Popen(load or ["true"], stdout=subprocess.PIPE, text=True)
        r, _, _ = select.select([fd], [], [], 0.2)
        if r:
            try:
                drawn += os.read(fd, 65536)
            except OSError:
                break
    os.write(fd, key)
    # Wait by the clock, not by a count of polls: once top closed the terminal (early in its exit),
    # reading the master fails at once (EIO), and a count of polls ran out in milliseconds while the
    # process was still finishing its exit under emulation. That, not top, was the "hang".
    code, closed, end = None, False, time.time() + 20
    while time.time() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            break
        if closed:
            time.sleep(0.1)
            continue
        try:
            r, _, _ = select.select([fd], [], [], 0.1)
            chunk = os.read(fd, 65536) if r else None
        except OSError:
            chunk = b""
        if chunk == b"":
            closed = True
        elif chunk:
            drawn += chunk
    if code is None:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    # What it wrote last (giving the terminal back) may still be in the pseudo-terminal when it exits.
    while not closed:
        try:
            r, _, _ = select.select([fd], [], [], 0.5)
            chunk = os.read(fd, 65536) if r else b""
        except OSError:
            chunk = b""
        if not chunk:
            break
        drawn += chunk
    os.close(fd)
    out = p.communicate(timeout=600)[0] if p else None
    return drawn.decode(errors="replace"), code, out


def stat_preemptors(c, tool):
    """`stat -- CMD` ends with who preempted CMD's tasks, read once they have exited
    (`preempted_by_exited`: the preempt notifiers' counts, folded at each task's exit), against the
    kernel's own `sched_switch` events (a tracepoint, not a notifier) in the trace buffer: the switches
    out of CMD's tasks while they were runnable, by next_pid, each before its task's `sched_process_exit`
    event (where the module folds the task's counts: the switches of its last moments after it are not
    its; on PREEMPT_RT they are many, its exit taking sleeping locks that interrupt threads contend).
    CMD is `timeout 3 dd ...` on CPU 1 beside a shell loop there: `dd` is CMD's child, attached at fork,
    and the loop must be the top preemptor."""
    # prev_state R: switched out runnable without preemption (at the return to user space); R+: preempted.
    # CMD's tasks are the pids seen as `timeout` or `dd` (before its exec, `timeout` was the tool's child,
    # named `resched`).
    events = ("sched/sched_switch", "sched/sched_process_exit")
    hog = subprocess.Popen(["taskset", "-c", "1", "sh", "-c", "while :; do :; done"], start_new_session=True)
    try:
        tracefs("tracing_on", "0")
        tracefs("buffer_size_kb", "8192")
        tracefs("events/sched/sched_switch/filter",
                'prev_comm == "timeout" || prev_comm == "dd" || prev_comm == "resched"')
        tracefs("events/sched/sched_process_exit/filter", 'comm == "timeout" || comm == "dd"')
        for e in events:
            tracefs(f"events/{e}/enable", "1")
        tracefs("trace", "")
        tracefs("tracing_on", "1")
        r = run(["taskset", "-c", "1", tool, "stat", "--json", "--", "timeout", "3", "dd", "if=/dev/zero",
                 "of=/dev/null", "bs=64k"], timeout=600)
        tracefs("tracing_on", "0")
        trace = read(f"{TRACING}/trace")
        lost = read(f"{TRACING}/per_cpu/cpu1/stats")
    finally:
        os.killpg(hog.pid, signal.SIGKILL)
        hog.wait()
        for e in events:
            tracefs(f"events/{e}/enable", "0")
            tracefs(f"events/{e}/filter", "0")
        tracefs("trace", "")
    # CMD's tasks: the pids ever named `timeout` or `dd` (the tool itself, also `resched`, never is).
    exited, switches, cmd = set(), [], set()
    for line in trace.splitlines():
        m = re.search(r"sched_process_exit: comm=\S+ pid=(\d+)", line)
        if m:
            exited.add(int(m.group(1)))
            continue
        m = re.search(r"sched_switch: prev_comm=(.*?) prev_pid=(\d+) .*?prev_state=(\S+) ==> next_comm=.*? "
                      r"next_pid=(\d+)", line)
        if not m:
            continue
        prev = int(m.group(2))
        if m.group(1) in ("timeout", "dd"):
            cmd.add(prev)
        if m.group(3) in ("R", "R+") and m.group(4) != "0":
            switches.append((prev, int(m.group(4)), prev in exited))
    kernel, after_exit = {}, 0
    for prev, nxt, late in switches:
        if prev not in cmd:
            continue
        if late:
            after_exit += 1
        else:
            kernel[nxt] = kernel.get(nxt, 0) + 1
    overrun = re.search(r"^overrun: (\d+)", lost, re.M)
    try:
        doc = json.loads(r.stdout[r.stdout.index("{"):])
        ours = {p["by_pid"]: p["count"] for p in doc["preempted_by"]}
    except (ValueError, KeyError) as e:
        ours = {"error": str(e)}
    print(f"# stat: preempted by {ours}; sched_switch events out of CMD's tasks before their exit: {kernel} "
          f"(and {after_exit} after it); shell loop {hog.pid}")
    # The events' window holds the module's: it also has the moments of the tool's child between its
    # fork and its attaching itself (a few switches), so per preemptor ours <= theirs <= ours + 3 + 2%.
    bad = [f"{p}: ours {ours.get(p, 0)}, kernel {kernel.get(p, 0)}" for p in set(ours) | set(kernel)
           if not ours.get(p, 0) <= kernel.get(p, 0) <= ours.get(p, 0) + 3 + kernel.get(p, 0) // 50]
    top = max(ours, key=ours.get, default=None)
    c.check(f"stat -- CMD: who preempted CMD once it exited, each preemptor as many times as sched_switch "
            f"events before the task's exit say (at most 3 + 2% more there: before it attached itself), the "
            f"shell loop on its CPU most ({ours.get(hog.pid)} times)",
            r.returncode == 124 and top == hog.pid and ours.get(hog.pid, 0) > 10 and not bad
            and overrun and overrun.group(1) == "0", f"rc {r.returncode} {bad} {r.stderr} overrun {overrun}")
    r = run([tool, "stat", "--", "timeout", "1", "dd", "if=/dev/zero", "of=/dev/null", "bs=64k"], timeout=600)
    c.check("stat -- CMD: the text output ends with 'preempted by'",
            r.returncode == 124 and "preempted by" in r.stdout, r.stdout + r.stderr)


def exited_bounded(c):
    """`preempted_by_exited` keeps the 32 roots most recently added to, and counts those that made room:
    40 shells that attach themselves and exit, each a root with nothing preempting it."""
    def entries():
        text = read(f"{D}/preempted_by_exited")
        roots = [int(l.split()[0]) for l in text.splitlines()[1:] if l.strip() and not l.startswith("#")]
        m = re.search(r"^# (\d+) processes' entries made room", text, re.M)
        return list(dict.fromkeys(roots)), int(m.group(1)) if m else 0, text
    _, replaced0, _ = entries()
    pids = []
    for _ in range(40):
        p = subprocess.run(["sh", "-c", f"echo attach > {D}/attach && echo $$"], capture_output=True, text=True)
        pids.append(int(p.stdout.split()[-1]) if p.returncode == 0 and p.stdout.split() else -1)
    roots, replaced, text = entries()
    print(f"# preempted_by_exited after 40 attached shells: {len(roots)} roots, {replaced - replaced0} made room")
    c.check("preempted_by_exited: the 32 most recent roots kept, most recent first, the others counted "
            "as having made room (>= 8)",
            len(roots) == 32 and roots[:32] == pids[::-1][:32] and replaced - replaced0 >= 8
            and f"{pids[-1]} sh" in " ".join(text.split()), text[:800])


def folded_of(text):
    """The folded lines a stacks/<tag> file should give, computed here from the file: frames outermost
    first without their +0x offsets, equal stacks added together."""
    out, frames = {}, []
    for line in text.splitlines()[1:]:
        line = line.strip()
        m = re.match(r"^(\d+) hits on CPUs ", line)
        if m:
            key = ";".join(re.sub(r"\+0x[0-9a-f]+(?= |$)", "", f) for f in reversed(frames))
            out[key] = out.get(key, 0) + int(m.group(1))
            frames = []
        elif line:
            frames.append(line)
    return sorted(f"{k} {v}" for k, v in out.items())


def svg_texts(path):
    """The texts of an SVG's <text> and <title> elements (the SVG must parse)."""
    import xml.etree.ElementTree as ET
    root = ET.parse(path).getroot()
    return ["".join(e.itertext()).strip() for e in root.iter()
            if e.tag.rsplit("}", 1)[-1] in ("text", "title")]


def pictures(c, g, tool):
    """stacks --folded/--svg and plot: the numbers in them are the files'."""
    if not os.path.isdir(f"{D}/stacks"):
        c.check("stacks/ exists for the pictures (x86-64 only)", False, "no stacks/")
        return
    was = read(f"{D}/stacks_enable").strip().encode()
    write_errno(f"{D}/stacks_enable", b"1")
    run([g.load, "busypong", "0", "1", "300"])
    # Recording off: the tables stand still while the tool and this test read them.
    write_errno(f"{D}/stacks_enable", b"0")
    # RES and RSC: every kernel records both under this load (PREEMPT_RT queues no wakelist: no WKL).
    for tag in ("RES", "RSC"):
        text = read(f"{D}/stacks/{tag}")
        with open(f"{g.out}/stacks-{tag}.txt", "w") as f:
            f.write(text)
        r = run([tool, "stacks", tag, "--folded"])
        got = r.stdout.splitlines()
        want = folded_of(text)
        table = sum(int(m) for m in re.findall(r"^\s+(\d+) hits on CPUs", text, re.M))
        total = sum(int(l.rsplit(" ", 1)[1]) for l in got) if r.returncode == 0 else -1
        c.check(f"stacks {tag} --folded: the table's stacks outermost first, offsets dropped, equal ones added "
                f"({len(got)} lines, {total} hits = the file's {table})",
                r.returncode == 0 and got == want and total == table and table > 0,
                f"{r.stderr}\ngot {got[:3]}\nwant {want[:3]}")
        svg = f"{g.out}/stacks-{tag}.svg"
        r = run([tool, "stacks", tag, "--svg", svg])
        try:
            texts = svg_texts(svg)
        except (OSError, SyntaxError) as e:
            texts = [f"no SVG: {e}"]
        root = [t for t in texts if t.startswith("all (")]
        c.check(f"stacks {tag} --svg: the flame graph parses, its root counts the table's {table:,} hits, "
                "each outermost frame is a box",
                r.returncode == 0 and root and root[0].startswith(f"all ({table:,} hits")
                and all(any(t.startswith(l.split(";")[0] + " (") for t in texts) for l in want),
                f"{r.stderr} {root} {texts[:5]}")
    write_errno(f"{D}/stacks_enable", was)

    def cal_total():
        t = read(f"{D}/matrix")
        block = t.split("CAL:", 1)[1]
        return sum(int(v) for l in block.splitlines() if re.match(r"^CPU\d+:", l) for v in l.split()[1:])
    before = cal_total()
    svg = f"{g.out}/matrix.svg"
    r = run([tool, "plot", "matrix", "--svg", svg])
    after = cal_total()
    with open(f"{g.out}/matrix.txt", "w") as f:
        f.write(read(f"{D}/matrix"))
    texts = svg_texts(svg) if r.returncode == 0 else []
    cap = [int(m.group(1).replace(",", "")) for t in texts if (m := re.match(r"^CAL: ([\d,]+) function", t))]
    cpus = sorted(int(x[3:]) for x in set(texts) if re.fullmatch(r"CPU\d+", x))
    online = parse_table(read(f"{D}/ipi"))[0]
    c.check(f"plot matrix: the CAL heat map's total ({cap}) lies between the file's before and after "
            f"({before}..{after}), its labels are the online CPUs ({cpus})",
            r.returncode == 0 and len(cap) == 1 and before <= cap[0] <= after and cpus == online,
            f"{r.stderr} {texts[:8]}")
    svg = f"{g.out}/pairs.svg"
    r = run([tool, "plot", "pairs", "-n", "8", "--svg", svg])
    texts = svg_texts(svg) if r.returncode == 0 else []
    labels = [t for t in texts if re.fullmatch(r"(RES|CFS|CFM|RSC|WKL|NIP) CPU\d+ -> CPU\d+", t)]
    c.check(f"plot pairs -n 8: 8 bars labelled kind, sender and target ({len(labels)})",
            r.returncode == 0 and len(labels) == 8, f"{r.stderr} {texts[:12]}")
    svg = f"{g.out}/latency-resched.svg"
    r = run([tool, "plot", "latency", "resched", "--svg", svg])
    texts = svg_texts(svg) if r.returncode == 0 else []
    c.check("plot latency resched: one panel per histogram (@local, @remote, @lazy)",
            r.returncode == 0 and all(any(t.startswith(f"latency/resched @{h}: count") for t in texts)
                                      for h in ("local", "remote", "lazy")), f"{r.stderr} {texts[:3]}")


def main(c, g):
    tool = f"{g.repo}/tools/resched/target/release/resched"
    c.check("the tool is built (make builds it beside the module)", os.access(tool, os.X_OK), tool)
    if not os.access(tool, os.X_OK):
        return
    save_files(g.out)

    # --- show --json agrees with the files read before and after it --------------------------------
    before = totals(tables())
    r = run([tool, "show", "--json"])
    after = totals(tables())
    try:
        doc = json.loads(r.stdout)
        got = {f"{name}/{row}": sum(vals) for name in ("ipi", "received", "sched")
               for row, vals in doc["tables"][name]["rows"].items()}
        bad = [k for k in before if not before[k] <= got.get(k, -1) <= after[k]]
        schema = doc["schema"]
    except (ValueError, KeyError) as e:
        bad, schema = [f"not the document: {e}"], None
    c.check(f"show --json: schema resched/1, every count between the files read before and after ({len(before)} rows)",
            r.returncode == 0 and schema == "resched/1" and not bad, f"{bad}\n{r.stderr}")

    # --- stat around a known load: its differences lie within the files' differences around it -------
    f0 = totals(tables())
    r = run([tool, "stat", "--json", "--", g.load, "pingpong", "2", "3", str(N_PING)], timeout=600)
    f1 = totals(tables())
    try:
        doc = json.loads(r.stdout[r.stdout.index("{"):])
        d = {f"{name}/{row}": sum(vals) for name in ("ipi", "received", "sched")
             for row, vals in doc["tables"][name]["rows"].items()}
    except (ValueError, KeyError) as e:
        d = {"error": str(e)}
    outside = [k for k in f0 if not 0 <= d.get(k, -1) <= f1[k] - f0[k]]
    print(f"# stat --json: CFS {d.get('ipi/CFS')}, RES {d.get('ipi/RES')}, received CFS {d.get('received/CFS')}, "
          f"attached VOL {d.get('sched/VOL')}, IN {d.get('sched/IN')} (files around it: CFS "
          f"{f1['ipi/CFS'] - f0['ipi/CFS']}, RES {f1['ipi/RES'] - f0['ipi/RES']})")
    # The idle ping-pong's wakeups go through the wakelist (CFS IPIs), or without TTWU_QUEUE (PREEMPT_RT)
    # are reschedule requests of the idle CPU (RES IPIs, or none when it polls).
    key, need = ("ipi/CFS", N_PING) if ttwu_queue() else ("ipi/RES", N_PING // 4)
    c.check("stat --json: every difference within the files' differences around it, and the load's "
            f"IPIs ({key} >= {need}) and its tasks' blocking switches counted (>= {N_PING})",
            r.returncode == 0 and not outside and d.get(key, 0) >= need
            and d.get("sched/VOL", 0) >= N_PING, f"{outside} {r.stderr}")
    r = run([tool, "stat", "-A", "--", g.load, "pingpong", "2", "3", "200"], timeout=600)
    print(r.stdout)
    c.check("stat -A: perf-stat-like lines per CPU and the elapsed time",
            r.returncode == 0 and re.search(r"^CPU2 +[\d,]+ +ipi:CFS", r.stdout, re.M)
            and "seconds time elapsed" in r.stdout, r.stdout + r.stderr)
    r = run([tool, "stat", "--", g.load, "pingpong", "2", "3", "500"], timeout=600)
    print(r.stdout)
    c.check("stat: totals, the histograms' summaries, the elapsed time",
            r.returncode == 0 and re.search(r"^ +[\d,]+ +ipi:CFS ", r.stdout, re.M)
            and "IPI delivery, CFS" in r.stdout and "seconds time elapsed" in r.stdout, r.stdout + r.stderr)
    r = run([tool, "stat", "--", "sh", "-c", "exit 3"])
    c.check(f"stat returns CMD's exit code (3: {r.returncode})", r.returncode == 3)
    r = run([tool, "stat", "--", "/nonexistent/cmd"])
    c.check("stat of a missing command: a message and exit 2, no panic",
            r.returncode == 2 and "resched:" in r.stderr and not panicked(r.stderr), r.stderr)
    stat_preemptors(c, tool)
    exited_bounded(c)

    # --- top under a pseudo-terminal: rates of the load, quits on q --------------------------------------
    # The load must outlast the session (it starts with top's first frame, which is followed by 6 s): its
    # rate from a short run first, then ~12 s of it.
    m = re.search(r"ns_per_op=([\d.]+)", run([g.load, "pingpong", "2", "3", "2000"]).stdout)
    n = int(12e9 / float(m.group(1))) if m else 20000
    drawn, code, out = top_session(tool, [g.load, "pingpong", "2", "3", str(n)], 6)
    m = re.search(r"ns_per_op=([\d.]+)", out or "")
    load_rate = 1e9 / float(m.group(1)) if m else 0
    # The idle ping-pong's IPIs: CFS, or RES without TTWU_QUEUE (PREEMPT_RT).
    row = "CFS sent" if ttwu_queue() else "RES sent"
    frames = [f for f in drawn.split("resched top") if row in f]
    rates = []
    if frames:
        line = re.search(row + r"((?:\s+[\d,]+)+)", frames[-1])
        if line:
            rates = [int(v.replace(",", "")) for v in line.group(1).split()]
    print(f"# top: {len(frames)} frames, {row} per second {rates}; the load did {load_rate:.0f} round trips/s")
    c.check(f"top on a terminal: refreshes, shows the ping-pong's {row.split()[0]} rates on CPUs 2-3 (0.3x-3x the "
            "load's round trips per second), quits on q",
            code == 0 and len(frames) >= 2 and len(rates) >= 4 and load_rate > 0
            and all(0.3 * load_rate <= r <= 3 * load_rate for r in rates[2:4]), drawn[-2000:])
    drawn, code, _ = top_session(tool, None, 3, key=b"\x03")
    c.check(f"top quits on Ctrl-C (exit {code}) and leaves the alternate screen",
            code == 0 and chr(27) + "[?1049l" in drawn, drawn[-600:])
    r = run([tool, "top"])
    c.check("top without a terminal: a message and exit 2", r.returncode == 2 and "terminal" in r.stderr,
            r.stderr)

    # --- export for node_exporter ----------------------------------------------------------------------
    tdir = f"{g.out}/textfile"
    os.makedirs(tdir, exist_ok=True)
    r = run([tool, "export", "--prometheus", tdir, "--matrix"])
    prom = read(f"{tdir}/resched.prom") if os.path.exists(f"{tdir}/resched.prom") else ""
    chk = subprocess.run(["promtool", "check", "metrics"], input=prom, capture_output=True, text=True)
    c.check("export --prometheus: resched.prom written (no temporary left), promtool check metrics accepts it",
            r.returncode == 0 and prom and chk.returncode == 0 and os.listdir(tdir) == ["resched.prom"],
            r.stderr + chk.stdout + chk.stderr)
    run(["ip", "link", "set", "lo", "up"])  # the guest may boot with loopback down
    exporter = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    ne = subprocess.Popen([exporter, f"--web.listen-address=127.0.0.1:{PORT}", "--collector.disable-defaults",
                           "--collector.textfile", f"--collector.textfile.directory={tdir}",
                           "--collector.interrupts"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = ""
    try:
        for _ in range(100):
            try:
                metrics = urllib.request.urlopen(f"http://127.0.0.1:{PORT}/metrics", timeout=5).read().decode()
                break
            except OSError:
                time.sleep(0.3)
    finally:
        ne.terminate()
        ne.wait(timeout=30)
    chk = subprocess.run(["promtool", "check", "metrics"], input=metrics, capture_output=True, text=True)
    ours = re.findall(r'^resched_ipi_received_total\{cpu="(\d+)",type="(RES|CAL)"\}', metrics, re.M)
    theirs = re.findall(r'^node_interrupts_total\{cpu="(\d+)",[^}]*type="(RES|CAL)"\}', metrics, re.M)
    print(f"# node_exporter served {len(metrics.splitlines())} lines; received series {len(ours)}, "
          f"node_interrupts RES/CAL series {len(theirs)}")
    c.check("node_exporter serves the module's series beside node_interrupts_total with the same cpu and "
            "type labels; promtool check metrics accepts /metrics",
            ours and sorted(ours) == sorted(theirs) and chk.returncode == 0
            and "resched_latency_seconds_bucket" in metrics, chk.stdout + chk.stderr + metrics[:1500])
    # noise/: per CPU and source, joined to node_interrupts_total on cpu and type (ours count since the load
    # or a reset, theirs since boot: ours never more).
    noise = {(c_, t): int(v) for c_, t, v in re.findall(
        r'^resched_noise_interruptions_total\{cpu="(\d+)",[^}]*type="(LOC|RES|CAL|\d+)"\} (\d+)$', metrics, re.M)}
    kernel = {(c_, t): int(float(v)) for c_, t, v in re.findall(
        r'^node_interrupts_total\{cpu="(\d+)",[^}]*type="(\w+)"\} (\S+)$', metrics, re.M)}
    unjoined = [k for k in noise if k not in kernel or noise[k] > kernel[k]]
    c.check(f"node_exporter serves noise/'s series ({len(noise)} by cpu and type), each joining a "
            "node_interrupts_total series with no more than its count",
            len({t for _, t in noise} & {"LOC", "CAL"}) == 2 and not unjoined, f"{unjoined[:10]}")

    # --- attach by pid: the module's `attach PID`, and `stat -p` ----------------------------------------------
    tree = subprocess.Popen([g.load, "tree"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = tree.stdout.readline().strip() == "ready"
    tids = sorted(int(t) for t in os.listdir(f"/proc/{tree.pid}/task"))

    def attached_tids():
        return sorted(int(l.split()[0]) for l in read(f"{D}/tasks").splitlines()[1:]
                      if l.split() and l.split()[0].isdigit())

    e = write_errno(f"{D}/attach", f"attach {tree.pid}".encode())
    seen = []
    for _ in range(100):
        seen = attached_tids()
        if set(tids) <= set(seen):
            break
        time.sleep(0.1)
    c.check(f"attach PID: every thread of a running process attaches itself ({len(tids)} threads, blocked "
            f"in read(): the work interrupts the sleep)", ready and e == 0 and set(tids) <= set(seen),
            f"errno {e}, threads {tids}, attached {seen}")
    loaded_rc = run(["rmmod", "resched_probe"]).returncode
    c.check("rmmod is refused while they are attached", loaded_rc != 0 and os.path.isdir(D))
    e = write_errno(f"{D}/attach", f"detach {tree.pid}".encode())
    for _ in range(100):
        seen = attached_tids()
        if not set(tids) & set(seen):
            break
        time.sleep(0.1)
    c.check("detach PID: every thread detaches itself", e == 0 and not set(tids) & set(seen), str(seen))
    errs = {data: write_errno(f"{D}/attach", data) for data in
            (b"attach 2", b"attach 999999", b"attach 0", b"attach -1", b"attach 0x10", b"attach 12 ",
             b"detach x", b"attach  5")}
    want = {b"attach 2": errno.EPERM, b"attach 999999": errno.ESRCH}
    c.check(f"attach PID: a kernel thread is EPERM (and logged), no such process ESRCH, bad input EINVAL ({errs})",
            all(v == want.get(k, errno.EINVAL) for k, v in errs.items())
            and "is a kernel thread" in run(["dmesg"]).stdout)
    sleeper = subprocess.Popen([g.load, "sleeper", "100000", "5000"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    sleeper.stdout.readline()  # "start"
    sleeper.stdin.write("go\n")
    sleeper.stdin.flush()
    r = run([tool, "stat", "-p", str(sleeper.pid), "--duration", "2"])
    left = attached_tids()
    sleeper.kill()
    sleeper.wait()
    print(r.stdout)
    c.check("stat -p PID --duration 2: counts a running sleeper's switches, then detaches it",
            r.returncode == 0 and f"pid {sleeper.pid}" in r.stdout
            and re.search(r"^ +[1-9][\d,]* +sched:VOL ", r.stdout, re.M) and sleeper.pid not in left,
            r.stdout + r.stderr)
    r = run([tool, "stat", "-p", "2"])
    c.check("stat -p of a kernel thread: 'kernel thread', exit 2",
            r.returncode == 2 and "kernel thread" in r.stderr and not panicked(r.stderr), r.stderr)
    tree.stdin.write("go\n")
    tree.stdin.close()
    tree.wait(timeout=60)

    pictures(c, g, tool)

    # --- errors: a message and a non-zero exit, never a panic -----------------------------------------------
    r = run(["env", "RESCHED_DIR=/nonexistent", tool, "show"])
    c.check("module directory missing: 'is the resched_probe module loaded?', exit 2",
            r.returncode == 2 and "loaded" in r.stderr and not panicked(r.stderr), r.stderr)
    r = run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", tool, "show"])
    c.check("not root: 'permission denied ... root', exit 2",
            r.returncode == 2 and "permission denied" in r.stderr and not panicked(r.stderr), r.stderr)
    r = run([tool, "export", "--prometheus", "/nonexistent"])
    c.check("export to a missing directory: a message, exit 2", r.returncode == 2 and not panicked(r.stderr),
            r.stderr)
    r = run([tool, "top", "-d", "0"])
    c.check("bad option value: clap's message, exit 2", r.returncode == 2 and "positive" in r.stderr, r.stderr)

    # --- noise -C 3: the local timer's interruptions of CPU 3 within /proc/interrupts' around the run ---
    def loc3():
        lines = read("/proc/interrupts").splitlines()
        col = lines[0].split().index("CPU3")
        row = [l.split() for l in lines if l.split()[:1] == ["LOC:"]]
        return int(row[0][col + 1]) if row else None
    def pairs3():
        return {(f[1], int(f[2][3:])): int(f[0]) for f in (l.split() for l in read(f"{D}/pairs").splitlines())
                if len(f) == 4 and f[0].isdigit() and f[3] == "CPU3" and f[2].startswith("CPU")}
    # TLB shootdowns from CPU 0 to CPU 3 throughout (stopped after): CPU 0 is among the senders.
    shoot = subprocess.Popen([g.load, "shootdown", "0", "3", "100000000"],
                             stdout=subprocess.DEVNULL)
    time.sleep(0.3)
    p_before = pairs3()
    first = loc3()
    r = run([tool, "noise", "-C", "3", "-d", "1", "--json"])
    last = loc3()
    p_after = pairs3()
    shoot.kill()
    shoot.wait()
    try:
        doc = json.loads(r.stdout)
        loc = [s["count"] for s in doc["sources"] if s["source"] == "LOC"]
        ok = (doc["schema"] == "resched-noise/1" and doc["cpu"] == 3 and doc["taken_ns"] ==
              sum(s["time_ns"] for s in doc["sources"] if s["taken"]))
        senders = {(s["kind"], s["sender"]): s["count"] for s in doc["senders"]}
    except (ValueError, KeyError) as e:
        loc, ok, senders = [], False, {}
        print(f"# noise --json: not the document: {e}")
    cal0 = senders.get(("CFS", 0), 0) + senders.get(("CFM", 0), 0)
    over = [f"{k}: {n} > {p_after.get(k, 0) - p_before.get(k, 0)}" for k, n in senders.items()
            if n > p_after.get(k, 0) - p_before.get(k, 0)]
    c.check(f"noise -C 3 --json under TLB shootdowns from CPU 0: senders {senders}, CPU 0's call-function IPIs "
            f"{cal0} > 0, each within pairs' difference around the run", cal0 > 0 and bool(senders) and not over,
            "; ".join(over))
    if first is None:
        c.check("noise -C 3 --json: schema resched-noise/1, taken = the sum of its sources", r.returncode == 0 and ok,
                r.stdout + r.stderr)
    else:
        c.check(f"noise -C 3 -d 1 --json: LOC {loc} within /proc/interrupts' {last - first} around it (and > 0); "
                "taken = the sum of its sources", r.returncode == 0 and ok and len(loc) == 1
                and 0 < loc[0] <= last - first + 1, r.stdout + r.stderr)
    r = run([tool, "noise", "-C", "3", "-d", "0.2"])
    print(r.stdout)
    c.check("noise -C 3: the table, ranked", r.returncode == 0 and re.search(r"^source +count", r.stdout, re.M),
            r.stdout + r.stderr)
