# SPDX-License-Identifier: GPL-2.0
"""The module loaded at boot by systemd (make check-systemd, issue 27): the guest's init is systemd
(vng --systemd), its kernel the one built for it (KCONFIG=systemd: control groups, FHANDLE), booted as an
installed kernel, so that its /lib/modules/<release> is the host's, where scripts/dkms.sh installed the
module, and its /etc the host's, where `make install-boot` put /etc/modules-load.d/resched_probe.conf.
This part runs after boot, from virtme-ng's serial getty: by then systemd-modules-load.service has run.

It checks what a user who installed the module would look at: that systemd booted the machine, that the
unit that reads modules-load.d succeeded and says it inserted the module, that the module loaded is the
file DKMS installed, that it counts (its received IPIs against /proc/interrupts over a load), and that
modprobe -r takes it away."""

import os
import re

from latency import received_over_load
from lib import D, KO_NAME, ONLINE, loaded_is, module_listed, online_cpus, read, run

SNIPPET = "/etc/modules-load.d/resched_probe.conf"
UNIT = "systemd-modules-load.service"


def unit_state(unit):
    """{property: value} of `unit` from systemctl show."""
    r = run(["systemctl", "show", unit, "-p", "ActiveState", "-p", "Result", "-p", "ExecMainStatus"])
    return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)


def main(c, g):
    comm = read("/proc/1/comm").strip()
    c.check(f"PID 1 is systemd ({comm})", comm == "systemd")
    r = run(["systemctl", "is-system-running"])
    print(f"# systemctl is-system-running: {r.stdout.strip()}")
    if r.stdout.strip() not in ("running", "starting"):
        print(run(["systemctl", "--failed", "--no-pager"]).stdout)

    try:
        snippet = read(SNIPPET)
    except OSError as e:
        snippet = str(e)
    c.check(f"{SNIPPET} (make install-boot) names the module", KO_NAME in snippet.split(), snippet)

    state = unit_state(UNIT)
    c.check(f"{UNIT} ran and succeeded ({state})",
            state.get("ActiveState") == "active" and state.get("Result") == "success"
            and state.get("ExecMainStatus") == "0")
    journal = run(["journalctl", "-b", "-u", UNIT, "--no-pager", "-o", "cat"]).stdout
    c.check(f"{UNIT} says it inserted {KO_NAME} (its journal)",
            re.search(rf"Inserted module '{KO_NAME}'", journal) is not None, journal.strip()[-600:])

    rel = os.uname().release
    r = run(["modinfo", "-n", KO_NAME])
    path = r.stdout.strip()
    c.check(f"modinfo -n: the module DKMS installed for {rel} ({path})",
            r.returncode == 0 and path.startswith(f"/lib/modules/{rel}/") and "/dkms/" in path, r.stderr)
    try:
        live = read(f"/sys/module/{KO_NAME}/initstate").strip()
    except OSError as e:
        live = str(e)
    same, note = loaded_is(path)
    c.check(f"loaded at boot ({live}), and it is the installed file (its build ID note in /sys/module)",
            live == "live" and same, note)
    if not module_listed():
        return

    c.check("its files read: cpus is the online CPUs", read(f"{D}/cpus") == read(ONLINE))
    cpus = online_cpus()
    window = received_over_load(c, g, cpus)
    if window:
        before, after, got = window
        # Counting since boot: /proc/interrupts (since the kernel started) minus `received` (since the
        # module loaded) is never negative, and did not move over the load: every IPI received counted.
        c.check("received since the load at boot <= /proc/interrupts, and over a load equal to it per CPU "
                f"(RES {[got['RES'][x] for x in cpus]}, CAL {[got['CAL'][x] for x in cpus]})",
                before == after and all(v >= 0 for k in before for v in before[k].values())
                and sum(got["RES"].values()) > 0 and sum(got["CAL"].values()) > 0,
                f"before {before}, after {after}")

    r = run(["modprobe", "-r", KO_NAME])
    c.check("modprobe -r unloads it, files and all",
            r.returncode == 0 and not module_listed() and not os.path.exists(D), r.stderr)
