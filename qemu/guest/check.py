# SPDX-License-Identifier: GPL-2.0
"""The boot test (`make check`): loads the module, checks what it shows, unloads it, 20 load/unload
cycles, then the IPI, preempt-notifier and stack checks, each part after its own insmod."""

import fnmatch
import os

import arm64
import dkms
import engine
import ipi
import latency
import models
import noise
import races
import sched
import stacks
import tool
from lib import (D, KO_NAME, ONLINE, PREFIX, dmesg_count, guarded, insmod, module_listed, one_byte_reads, read,
                 rmmod, write_errno)

PARTS = [("ipi", ipi.main), ("engine", engine.main), ("fallback", engine.fallback_main), ("latency", latency.main),
         ("sched", sched.main), ("models", models.main), ("races", races.main), ("stacks", stacks.main), ("tool", tool.main), ("noise", noise.main), ("arm64", arm64.main),
         ("dkms", dkms.main)]
# What runs when CHECK_PARTS is empty. On arm64: not latency (its oracle is bpftrace, which the arm64 root
# lacks; arm64.py checks the receive side and delivery there), not races (its test module is built for
# x86 only), not stacks (not recorded on arm64), not
# the tool (built for the host), not the fallback-only build (its kprobes are on x86's send functions).
# `noise` runs in its own boot, with CPU 3 isolated (isol.py); it can be run here too (CHECK_PARTS=noise).
# `fallback` loads the fallback-only build (make fallback: .build-fallback/) instead of the module;
# `dkms` loads none: it modprobes the module DKMS installed (scripts/dkms.sh, before the boot).
DEFAULT_PARTS = (["ipi", "engine", "sched", "arm64"] if os.uname().machine == "aarch64"
                 else ["ipi", "engine", "fallback", "latency", "sched", "models", "races", "stacks", "tool", "dkms"])


def cat(path):
    """What `$(cat PATH 2>&1)` gives: the text without its trailing newlines (an error's text when the
    read fails, which never equals a file's)."""
    try:
        return read(path).rstrip("\n")
    except OSError as e:
        return f"cat: {path}: {e.strerror}"


def write_fails(path):
    """`! echo 1 > PATH`: the shell's open (O_CREAT|O_TRUNC) or its write fails."""
    try:
        with open(path, "w") as f:
            f.write("1\n")
    except OSError:
        return True
    return False


def documented(repo):
    """The files docs/debugfs.md documents: {path pattern under D: mode}, from its `What:` and `Mode:`
    lines (`stacks/<tag>` is the pattern `stacks/*`)."""
    entries, what = {}, None
    with open(f"{repo}/docs/debugfs.md") as f:
        for line in f:
            key, _, value = line.strip().partition(":")
            if key == "What":
                what = value.strip().removeprefix(f"{D}/").replace("<tag>", "*").replace("<N>", "*")
            elif key == "Mode" and what is not None:
                entries[what] = int(value.strip(), 8)
                what = None
    return entries


def created():
    """Every file under D (not its directories): {path under D: mode}."""
    files = {}
    for root, _, names in os.walk(D):
        for name in names:
            path = os.path.join(root, name)
            files[os.path.relpath(path, D)] = os.stat(path).st_mode & 0o7777
    return files


def check_reference(c, repo):
    """Each file the module creates has exactly one entry in docs/debugfs.md, with the mode it has, and
    each entry names a file the module creates."""
    doc, files = documented(repo), created()
    entry_of = {f: [p for p in doc if fnmatch.fnmatchcase(f, p)] for f in files}
    unmatched = sorted(f for f, ps in entry_of.items() if len(ps) != 1)
    c.check(f"every file of {D} ({len(files)}) has one entry in docs/debugfs.md", bool(files) and not unmatched,
            f"not exactly one: {unmatched}" if unmatched else "")
    wrong = sorted(f"{f} {m:o} (documented {doc[ps[0]]:o})" for f, m in files.items()
                   if len(ps := entry_of[f]) == 1 and doc[ps[0]] != m)
    c.check("each file has the mode docs/debugfs.md gives it", not wrong, "; ".join(wrong))
    stale = sorted(p for p in doc if not any(fnmatch.fnmatchcase(f, p) for f in files))
    c.check(f"each of the {len(doc)} entries of docs/debugfs.md names a file the module creates", not stale,
            f"no such file: {stale}" if stale else "")


def main(c, g):
    # --- Load, files, unload ------------------------------------------------------------------------
    c.check(f"insmod {KO_NAME}.ko", insmod(g.ko))
    c.check("module listed in /proc/modules", module_listed())
    c.check(f"{D} is a directory", os.path.isdir(D))
    c.check("cpus equals /sys/devices/system/cpu/online", cat(f"{D}/cpus") == cat(ONLINE))
    try:
        same = one_byte_reads(f"{D}/cpus") == read(f"{D}/cpus")
    except OSError:
        same = False
    c.check("cpus read one byte at a time equals one large read", same)
    try:
        mode = os.stat(f"{D}/cpus").st_mode & 0o7777
    except OSError:
        mode = None
    c.check("cpus is root-only read-only (mode 400)", mode == 0o400, f"mode {mode:o}" if mode else "")
    c.check("writing cpus fails", write_fails(f"{D}/cpus"))
    check_reference(c, g.repo)
    c.check("load logged one line", dmesg_count(f"{PREFIX}loaded") == 1)
    c.check(f"rmmod {KO_NAME}", rmmod())
    c.check(f"unload removed {D}", not os.path.exists(D))
    c.check("module gone from /proc/modules", not module_listed())

    # --- 20 load/unload cycles ----------------------------------------------------------------------
    cycles_ok = 0
    for i in range(1, 21):
        if not insmod(g.ko):
            break
        if cat(f"{D}/cpus") != cat(ONLINE):
            break
        if not rmmod():
            break
        if os.path.exists(D):
            break
        cycles_ok = i
    c.check(f"20 load/unload cycles ({cycles_ok} completed)", cycles_ok == 20)

    # --- IPI counting, preempt notifiers, stacks: each part after its own insmod ---------------------
    only = os.environ.get("CHECK_PARTS", "").replace(",", " ").split() or DEFAULT_PARTS
    for name, part in PARTS:
        if name not in only:
            print(f"# the {name} checks: not run (parts: {' '.join(only)})")
            continue
        if name == "dkms":
            guarded(c, f"the {name} checks", part, c, g)
            continue
        fallback_ko = os.environ.get("RRP_FALLBACK_KO") or f"{g.repo}/.build-fallback/{KO_NAME}.ko"
        ko = fallback_ko if name == "fallback" else g.ko
        if insmod(ko):
            c.ok(f"insmod {os.path.relpath(ko, g.repo)} for the {name} checks")
            guarded(c, f"the {name} checks", part, c, g)
            if module_listed():
                # The sched checks attach this process; a failed one may have left it attached, which
                # would hold the module.
                write_errno(f"{D}/attach", b"detach")
                rmmod()
        else:
            c.not_ok(f"insmod for the {name} checks")
