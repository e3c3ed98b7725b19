# SPDX-License-Identifier: GPL-2.0
"""The guest tests' one list of facts: where the module's files are, the prefix of its kernel messages,
how checks are counted, what a kernel report looks like; and the readers and parsers the tests share.

On the host, `lib.py first-report FILE` prints the first kernel report in FILE (a console log or a
dmesg) with the lines that follow it, and exits 1 when there is none: qemu/boot.sh uses it, so that the
host and the guest judge the kernel log with the same patterns.
"""

import os
import re
import subprocess
import sys
import time
import traceback

D = "/sys/kernel/debug/resched"
TRACING = "/sys/kernel/tracing"
ONLINE = "/sys/devices/system/cpu/online"
KO_NAME = "resched_probe"
# Every kernel message of the module starts with this.
PREFIX = "resched_probe: "

# The architecture's IPI send functions, which the oracles probe with kprobe events (the module counts
# sends from the generic ipi:* tracepoints), and the register of a function's first argument.
if os.uname().machine == "aarch64":
    SEND_RES, SEND_CFS, SEND_CFM = ("arch_smp_send_reschedule", "arch_send_call_function_single_ipi",
                                    "arch_send_call_function_ipi_mask")
    ARG0, ARG1 = "%x0", "%x1"
else:
    SEND_RES, SEND_CFS, SEND_CFM = ("native_smp_send_reschedule", "native_send_call_func_single_ipi",
                                    "native_send_call_func_ipi")
    ARG0, ARG1 = "%di", "%si"
# Stack recording (stacks/<tag>) is x86-64 only: arm64 refuses stacks_enable with EOPNOTSUPP.
STACKS = os.uname().machine != "aarch64"


def res_load(load, a, b, n):
    """A command that makes CPUs a and b send each other reschedule IPIs, n each way. x86: `busypong` (a
    wakeup onto a busy CPU that shares its cache with the waker preempts it remotely). arm64 virt: no two
    CPUs share a cache, so every remote wakeup goes through the target's wakelist (CFS IPIs) and is
    resched locally; there `renice` each way (lowering a running task's priority reschedules its CPU)."""
    if os.uname().machine == "aarch64":
        return ["sh", "-c", f"{load} renice {a} {b} {n} && {load} renice {b} {a} {n}"]
    return [load, "busypong", str(a), str(b), str(n)]


def rt_kernel():
    """Whether the kernel is built PREEMPT_RT (its `uname -v` says so)."""
    return "PREEMPT_RT" in os.uname().version


def lazy_fair():
    """Whether a fair task's wakeup preemption is a lazy request (TIF_NEED_RESCHED_LAZY: no IPI, answered
    at the next tick or return to user space), as under the `lazy` model and on PREEMPT_RT, which selects
    lazy preemption: then a busy CPU is not sent reschedule IPIs for wakeups (kernel/sched/fair.c:
    check_preempt_wakeup_fair() -> resched_curr_lazy())."""
    if rt_kernel():
        return True
    try:
        return "(lazy)" in read("/sys/kernel/debug/sched/preempt")
    except OSError:
        return False


def ttwu_queue():
    """Whether a wakeup onto another CPU is queued on its wakelist (sched feature TTWU_QUEUE, delivered
    by a call-function-single IPI), as it is by default; PREEMPT_RT turns the feature off
    (kernel/sched/features.h), and such a wakeup is then a reschedule request (a RES IPI, or none when
    the target polls idle)."""
    try:
        return "NO_TTWU_QUEUE" not in read("/sys/kernel/debug/sched/features").split()
    except OSError:
        return not rt_kernel()


def bracketed(before, mid, after):
    """Whether `mid` is a reading of a file of counters taken between the readings `before` and `after`:
    the same words and layout, and each number between its values in the two (the counters only grow).
    With nothing counted meanwhile (before == after) it is equality."""
    parts = [re.split(r"(\d+)", t) for t in (before, mid, after)]
    if len({len(p) for p in parts}) != 1:
        return False
    for i, (b, m, a) in enumerate(zip(*parts)):
        if i % 2 and not int(b) <= int(m) <= int(a):
            return False
        if not i % 2 and not b.split() == m.split() == a.split():
            return False
    return True


class Guest:
    """Where the things a test runs are: the repository, the output directory, the module (RRP_KO, as
    qemu/boot.sh passes it), the load generator and the attach wrapper."""

    def __init__(self, repo, out):
        self.repo = repo
        self.out = out
        self.ko = os.environ.get("RRP_KO") or f"{repo}/{KO_NAME}.ko"
        # The load generator: the host's build, or on arm64 the static cross-build (make check-arm64).
        self.load = f"{repo}/tools/rrp-load" + ("-arm64" if os.uname().machine == "aarch64" else "")
        self.attach = f"{repo}/tools/resched-attach"
        # The race checks' test module (qemu/modules), built for this kernel (make testmod).
        self.testmod = os.environ.get("RRP_TESTMOD", "")


class Checks:
    """Counts the checks of one guest run and prints each as `ok N - desc` or `not ok N - desc`, the
    details of a failure below it as `#   ...` lines."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, desc, cond, detail=""):
        cond = bool(cond)
        if cond:
            self.passed += 1
        else:
            self.failed += 1
        n = self.passed + self.failed
        print(f"{'ok' if cond else 'not ok'} {n} - {desc}", flush=True)
        if not cond and detail:
            for line in str(detail).splitlines():
                print(f"#   {line}", flush=True)
        return cond

    def ok(self, desc):
        return self.check(desc, True)

    def not_ok(self, desc, detail=""):
        return self.check(desc, False, detail)

    def summary(self):
        return f"{self.passed} passed, {self.failed} failed"


# --- Kernel reports ----------------------------------------------------------------------------------
# What the kernel prints when something went wrong, one pattern per kind, each matched anywhere in a
# line. BUG and WARNING are whole words (`BUG:`, `kernel BUG at`, `WARNING: CPU:`), so that DEBUG or
# ODEBUG in a harmless line is not a BUG.
REPORT_PATTERNS = [
    r"\bBUG\b",                                   # BUG: ..., kernel BUG at ..., BUG: soft lockup
    r"\bWARNING\b",                               # WARN_ON, lockdep's "WARNING: possible ..."
    r"Oops",
    r"Call Trace",
    r"general protection fault",
    r"Kernel panic",
    r"KASAN",
    r"KFENCE",
    r"UBSAN:",
    r"possible (circular|recursive) locking",     # lockdep
    r"inconsistent lock state",                   # lockdep
    r"suspicious RCU usage",                      # PROVE_RCU
    r"rcu: INFO",                                 # RCU stall
    r"sleeping function called",                  # DEBUG_ATOMIC_SLEEP
    r"ODEBUG",                                    # debug objects
    r"list_(add|del) corruption",                 # DEBUG_LIST
]
REPORT = re.compile("|".join(f"(?:{p})" for p in REPORT_PATTERNS))
# Lines of the guest tests' own output, which a console log holds beside the kernel's and whose words
# ("kernel log has no WARNING, BUG, ...") are not reports.
OWN_OUTPUT = re.compile(r"^((not )?ok \d+ - |#|guest: |boot: |\d+ passed, \d+ failed$)")
REPORT_CONTEXT = 40


def report_lines(text):
    """The lines of `text` (a kernel log, or a console log) that are kernel reports."""
    return [l for l in text.splitlines() if REPORT.search(l) and not OWN_OUTPUT.match(l)]


def first_report(text, context=REPORT_CONTEXT):
    """(line number from 1, the first report line and the `context` lines after it) or None: a
    crash's tail often shows only the last of several reports, and the first is the cause."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if REPORT.search(line) and not OWN_OUTPUT.match(line):
            return i + 1, lines[i:i + context + 1]
    return None


REPORT_CHECK = ("kernel log holds no report (WARNING, BUG, Oops, Call Trace, panic, KASAN, KFENCE, UBSAN, "
                "lockdep, RCU, sleeping in atomic, debug objects, list corruption)")


def kernel_log():
    """The kernel's own messages since boot, as dmesg prints them ("[seconds] text"): the records of
    /dev/kmsg of facility 0 (kern). What user space writes there (systemd, virtme-ng-init's
    "WARNING: failed to run ...") is of another facility: the kernel gives LOG_USER to a write that
    names none or names kern (devkmsg_write() in kernel/printk/printk.c)."""
    lines = []
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:  # no /dev/kmsg: dmesg's lines, whatever wrote them
        return dmesg()
    try:
        while True:
            try:
                record = os.read(fd, 8192).decode(errors="replace")
            except BlockingIOError:
                break
            except BrokenPipeError:  # records overwritten since the last read: go on from the oldest
                continue
            line = kmsg_line(record)
            if line is not None:
                lines.append(line)
    finally:
        os.close(fd)
    return "\n".join(lines)


def kmsg_line(record):
    """dmesg's line ("[seconds] text") for one /dev/kmsg record ("prio,seq,us,flags;text" and
    continuation lines) of the kernel's own (facility 0: prio >> 3 == 0), else None."""
    head, _, text = record.partition(";")
    fields = head.split(",")
    if len(fields) < 3 or int(fields[0]) >> 3 != 0:
        return None
    us = int(fields[2])
    return f"[{us // 1_000_000:5d}.{us % 1_000_000:06d}] {text.splitlines()[0] if text else ''}"


def check_kernel_log(c):
    """The check that ends every guest run: no kernel report since boot (the kernel's own messages)."""
    log = kernel_log()
    first = first_report(log)
    detail = ""
    if first:
        detail = f"{len(report_lines(log))} report lines; the first (kernel log line {first[0]}) and what follows:\n"
        detail += "\n".join(first[1])
    return c.check(REPORT_CHECK, first is None, detail)


# --- The module ----------------------------------------------------------------------------------------
def module_probes():
    """The module's probes, from the module (`probes`): [(tag, symbol)], one per line in its order."""
    return [tuple(l.split()[:2]) for l in read(f"{D}/probes").splitlines() if l.strip()]


def module_tags():
    """The tags the module offers (first word of each `probes` line): RES CFS CFM RSC WKL today."""
    return [tag for tag, _ in module_probes()]


def module_symbols():
    """The kernel functions the module probes (second word of each `probes` line)."""
    return [sym for _, sym in module_probes()]


def testmod_layout(testmod):
    """The offsets and flag bits of the RSC oracle, from the test module's `layout` (loaded for the
    reading, then unloaded): {"rq_cpu": O, "rq_curr": O, "task_pid": O, "tif_need_resched": B,
    "tif_need_resched_lazy": B or -1}; None if the test module would not load."""
    loaded = "rrp_races" in read("/proc/modules")
    if not loaded and subprocess.run(["insmod", testmod]).returncode != 0:
        return None
    try:
        text = read("/sys/kernel/debug/rrp_races/layout")
    finally:
        if not loaded:
            subprocess.run(["rmmod", "rrp_races"])
    return {k: int(v) for k, v in (kv.split("=") for kv in text.split())}


def resched_function():
    """The function every reschedule request goes through: `__resched_curr` where the kernel has it out
    of line (7.x: `resched_curr()` and `resched_curr_lazy()` both call it), else `resched_curr`."""
    names = {l.split()[2] for l in read("/proc/kallsyms").splitlines() if l.endswith("resched_curr")}
    return "__resched_curr" if "__resched_curr" in names else "resched_curr"


def module_listed():
    """The module is in /proc/modules."""
    return any(l.startswith(KO_NAME + " ") for l in read("/proc/modules").splitlines())


def loaded_is(path):
    """(whether the loaded module is the file at `path`, the note or the error): the kernel shows each
    loaded module's ELF notes in /sys/module, and its build ID note must be in that file."""
    try:
        with open(f"/sys/module/{KO_NAME}/notes/.note.gnu.build-id", "rb") as f:
            note = f.read()
        with open(path, "rb") as f:
            return len(note) > 16 and note in f.read(), repr(note[:40])
    except OSError as e:
        return False, str(e)


def insmod(ko):
    """`insmod KO` (its messages go to the log); True on success."""
    return subprocess.run(["insmod", ko]).returncode == 0


def in_use(text):
    """Whether rmmod's message says the module is in use: kmod's "is in use", busybox's strerror of the
    EAGAIN (EWOULDBLOCK) that delete_module(O_NONBLOCK) returns for a module in use."""
    text = text.lower()
    return "in use" in text or "resource temporarily unavailable" in text


def rmmod():
    """`rmmod resched_probe`; True on success."""
    return subprocess.run(["rmmod", KO_NAME]).returncode == 0


def mount_debugfs():
    if not os.path.ismount("/sys/kernel/debug"):
        subprocess.run(["mount", "-t", "debugfs", "none", "/sys/kernel/debug"])
    if not os.path.ismount(TRACING):
        subprocess.run(["mount", "-t", "tracefs", "none", TRACING], stderr=subprocess.DEVNULL)


# --- Readers and parsers -------------------------------------------------------------------------------
# Numbers that are compared with each other are read in this process, with open(), one after the other:
# every process started sends IPIs of its own.
def read(path):
    with open(path) as f:
        return f.read()


def tracefs(name, text, append=False):
    """Writes `text` to tracefs file `name` in one write(2); `append` (O_APPEND, as `>>`) keeps what the
    file holds (kprobe_events). Python's own append mode seeks to the end, which tracefs refuses."""
    flags = os.O_WRONLY | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(f"{TRACING}/{name}", flags)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def online_cpus():
    """The online CPUs, from /sys/devices/system/cpu/online (a range `0-3` or a list)."""
    online = [int(x) for x in re.findall(r"\d+", read(ONLINE))]
    return list(range(online[0], online[-1] + 1)) if len(online) == 2 else online


def parse_table(text):
    """Parses a /proc/interrupts-style table: {"RES": {cpu: count}}; header gives the CPU columns."""
    lines = text.splitlines()
    cpus = [int(c[3:]) for c in lines[0].split()]
    rows = {}
    for line in lines[1:]:
        m = re.match(r"\s*(\S+):\s+(.*)$", line)
        if not m:
            continue
        fields = m.group(2).split()
        values = {}
        for cpu, field in zip(cpus, fields):
            if not field.isdigit():
                break
            values[cpu] = int(field)
        if len(values) == len(cpus):
            rows[m.group(1)] = values
    return cpus, rows


def parse_matrix(text):
    """Parses `matrix`: {"RES": {sender: {target: count}}, "CAL": ...}."""
    blocks = {}
    current = None
    cpus = []
    for line in text.splitlines():
        m = re.match(r"^(RES|CAL): ", line)
        if m:
            current = blocks.setdefault(m.group(1), {})
            continue
        if line.strip().startswith("CPU") and ":" not in line:
            cpus = [int(c[3:]) for c in line.split()]
            continue
        m = re.match(r"^CPU(\d+):\s+(.*)$", line)
        if m and current is not None:
            current[int(m.group(1))] = dict(zip(cpus, map(int, m.group(2).split())))
    return blocks


def proc_interrupts():
    """{"RES": {cpu: count}, "CAL": {...}} from /proc/interrupts (online CPUs only). On arm64 the rows are
    IPI0 (reschedule) and IPI1 (function call, both kinds), given here under x86's names."""
    rows = parse_table(read("/proc/interrupts"))[1]
    if "IPI0" in rows:
        rows["RES"], rows["CAL"] = rows["IPI0"], rows["IPI1"]
    return rows


# Rows of `ipi` that move on their own on a PREEMPT_RT kernel: its per-CPU threads (ktimers/N, the
# threaded interrupts) are woken, a reschedule request each, at every tick and interrupt.
MOVING_ROWS = ("RSC", "RSL", "RSP")


def ipi_sends(text):
    """The rows of `ipi` the files of a snapshot must agree on: everything but the reschedule requests
    (no cross-file check adds those up)."""
    return "\n".join(l for l in text.splitlines() if l.split()[:1] and l.split()[0] not in MOVING_ROWS)


def snapshot(files=("ipi", "targets", "matrix")):
    """Reads the module's files back to back until `ipi` reads the same before and after (but for the
    reschedule requests: MOVING_ROWS), so that the IPIs of the files of one snapshot agree (every process
    started sends IPIs, so this reads in-process)."""
    for _ in range(200):
        first = read(f"{D}/ipi")
        texts = {name: read(f"{D}/{name}") for name in files}
        last = read(f"{D}/ipi")
        # Read again after the others: what brackets them when they never stand still (PREEMPT_RT).
        texts["ipi+"], texts["targets+"] = last, read(f"{D}/targets")
        if ipi_sends(last) == ipi_sends(first) and ipi_sends(texts.get("ipi", first)) == ipi_sends(first):
            return texts, True
        time.sleep(0.05)
    return texts, False


def run(cmd, timeout=300):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def dmesg():
    return run(["dmesg"]).stdout


def dmesg_count(text):
    """How many lines of the kernel log contain `text`."""
    return sum(text in l for l in dmesg().splitlines())


def write_errno(path, data, offset=0, seek=0):
    """Writes `data` in one write(2) (pwrite(2) at `offset`, or after lseek(2) to `seek`); returns 0 or
    the errno, from the open or the write."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        return e.errno
    try:
        if seek:
            os.lseek(fd, seek, os.SEEK_SET)
        if offset:
            os.pwrite(fd, data, offset)
        else:
            os.write(fd, data)
        return 0
    except OSError as e:
        return e.errno
    finally:
        os.close(fd)


def one_byte_reads(path):
    """The file's text read with one read(2) per byte."""
    fd = os.open(path, os.O_RDONLY)
    chunks = []
    try:
        while True:
            b = os.read(fd, 1)
            if not b:
                return b"".join(chunks).decode()
            chunks.append(b)
    finally:
        os.close(fd)


def guarded(c, what, fn, *args):
    """Runs one part of a guest run; an exception is printed and counted as a failure, and the run goes
    on with the next part."""
    try:
        fn(*args)
        return True
    except Exception:  # noqa: BLE001 - printed and counted
        traceback.print_exc()
        sys.stderr.flush()
        c.not_ok(f"{what} ran to the end")
        return False


def main(argv):
    if len(argv) == 3 and argv[1] == "first-report":
        with open(argv[2], errors="replace") as f:
            first = first_report(f.read())
        if not first:
            return 1
        print(f"first kernel report in {argv[2]} (line {first[0]}):")
        print("\n".join(first[1]))
        return 0
    print("usage: lib.py first-report FILE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
