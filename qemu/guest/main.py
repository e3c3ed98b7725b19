# SPDX-License-Identifier: GPL-2.0
"""The guest side of qemu/boot.sh, in one process: `main.py MODE REPO OUT`.

Mounts debugfs and tracefs, copies everything it prints to OUT/test.log, runs MODE, ends every mode
with the kernel log check, prints `N passed, N failed` and leaves the verdict in OUT/result
(`passed failed`) and the kernel log in OUT/dmesg.log for the host.

  check   the boot test (check.py): load, files, unload, 20 cycles, then ipi.py, sched.py, stacks.py
  run     the main job (run.py): the counters under a short load, the notifiers on attached tasks
  bench   the benchmark (bench/guest_bench.py): writes OUT/bench.json
  stress  the stress test (stress.py), normally on the debug kernel
  scale   many possible CPUs, few online (scale.py)
  isol    CPU 3 isolated (isolcpus=3 nohz_full=3): noise/ there (isol.py, noise.py)
  systemd systemd as init: the module DKMS installed, loaded at boot from modules-load.d (systemd.py)

On arm64 (make check-arm64) `check` runs the parts that apply there, arm64.py among them.
"""

import importlib
import os
import subprocess
import sys

import lib

MODES = ("check", "run", "bench", "stress", "scale", "isol", "systemd")


def tee(path):
    """Sends this process's stdout and stderr, and those of every process it starts, through
    `tee -a PATH` to the console; returns the tee process."""
    t = subprocess.Popen(["tee", "-a", path], stdin=subprocess.PIPE)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(t.stdin.fileno(), 1)
    os.dup2(t.stdin.fileno(), 2)
    t.stdin.close()
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    return t


def untee(t):
    """Closes the pipe to tee and waits until it has written everything (a process left running by a
    failed test may hold the pipe open: then tee is stopped after 10 s)."""
    sys.stdout.flush()
    sys.stderr.flush()
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)
    try:
        t.wait(timeout=10)
    except subprocess.TimeoutExpired:
        t.kill()
        t.wait()


def mode_main(mode, repo):
    """The function that runs MODE: main(c, g) of its module (the benchmark's lives in bench/)."""
    if mode == "bench":
        sys.path.insert(0, os.path.join(repo, "bench"))
        return importlib.import_module("guest_bench").main
    return importlib.import_module(mode).main


def main(argv):
    if len(argv) != 4 or argv[1] not in MODES:
        print(f"usage: main.py {{{','.join(MODES)}}} REPO OUT", file=sys.stderr)
        return 2
    mode, repo, out = argv[1:]
    t = tee(f"{out}/test.log")
    c = lib.Checks()
    g = lib.Guest(repo, out)

    print(f"guest: {os.uname().release}, {len(os.sched_getaffinity(0))} CPUs online: "
          f"{lib.read(lib.ONLINE).strip()}")
    lib.mount_debugfs()
    lib.guarded(c, f"mode {mode}", lambda: mode_main(mode, repo)(c, g))
    lib.check_kernel_log(c)

    print(c.summary())
    with open(f"{out}/dmesg.log", "w") as f:
        subprocess.run(["dmesg"], stdout=f)
    with open(f"{out}/result", "w") as f:
        f.write(f"{c.passed} {c.failed}\n")
    untee(t)
    os.sync()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
