# SPDX-License-Identifier: GPL-2.0
"""Shared by the Python guest checks: check bookkeeping, debugfs/procfs/tracefs readers, table parsing."""

import os
import re
import subprocess
import sys
import time

D = "/sys/kernel/debug/resched"
TRACING = "/sys/kernel/tracing"
KO_NAME = "resched_probe"


class Checks:
    """Counts checks; `done()` writes `passed failed` for the bash driver to add to its totals."""

    def __init__(self, counts_file, first_number):
        self.counts_file = counts_file
        self.passed = 0
        self.failed = 0
        self.first = first_number

    def check(self, desc, cond, detail=""):
        n = self.first + self.passed + self.failed
        if cond:
            self.passed += 1
            print(f"ok {n} - {desc}", flush=True)
        else:
            self.failed += 1
            print(f"not ok {n} - {desc}", flush=True)
            if detail:
                for line in str(detail).splitlines():
                    print(f"#   {line}", flush=True)
        return cond

    def done(self):
        with open(self.counts_file, "w") as f:
            f.write(f"{self.passed} {self.failed}\n")


def read(path):
    with open(path) as f:
        return f.read()


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
    """{"RES": {cpu: count}, "CAL": {...}} from /proc/interrupts (online CPUs only)."""
    return parse_table(read("/proc/interrupts"))[1]


def snapshot(files=("ipi", "targets", "matrix")):
    """Reads the module's files back to back until `ipi` reads the same before and after, so that the
    files of one snapshot agree (every process started sends IPIs, so this reads in-process)."""
    for _ in range(50):
        first = read(f"{D}/ipi")
        texts = {name: read(f"{D}/{name}") for name in files}
        if read(f"{D}/ipi") == first and texts.get("ipi", first) == first:
            return texts, True
        time.sleep(0.05)
    return texts, False


def run(cmd, timeout=300):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def dmesg():
    return run(["dmesg"]).stdout


def dmesg_problems():
    return [l for l in dmesg().splitlines() if re.search(r"WARNING|BUG|Oops|Call Trace", l)]


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
