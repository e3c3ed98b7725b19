# SPDX-License-Identifier: GPL-2.0
"""The module as DKMS installed it (scripts/dkms.sh test, on the host, before this boot: the guest shares
the host's root, /lib/modules included): found by modprobe through depmod's index, the same module the
files say, unloaded by modprobe -r; then loaded as at boot, by systemd-modules-load reading the
project's modules-load.d snippet (dkms/resched_probe.conf). The guest's init is not systemd, so the
program systemd runs at boot is run here by hand.

virtme-ng shows the guest, in place of /lib/modules/<release>, the modules of the kernel tree it boots
(a symlink into the tree's .virtme_mods, on a tmpfs over /lib/modules). This part points that link at the
host's own /lib/modules/<release>, where DKMS installed the module, seen through a bind mount of the root
without what is mounted over it: what an installed kernel has."""

import os
import shutil

from lib import D, KO_NAME, ONLINE, loaded_is, module_listed, read, rmmod, run

SNIPPET = "/run/modules-load.d/resched_probe.conf"
HOSTROOT = "/run/rrp-hostroot"


def installed_modules(rel):
    """Points /lib/modules/<rel> at the host's; returns what to restore (the link vng made)."""
    link = f"/lib/modules/{rel}"
    before = os.readlink(link) if os.path.islink(link) else None
    os.makedirs(HOSTROOT, exist_ok=True)
    if not os.path.ismount(HOSTROOT):
        run(["mount", "--bind", "/", HOSTROOT])
    if os.path.islink(link):
        os.remove(link)
    os.symlink(f"{HOSTROOT}/lib/modules/{rel}", link)
    return before


def restore(rel, before):
    link = f"/lib/modules/{rel}"
    if os.path.islink(link):
        os.remove(link)
    if before:
        os.symlink(before, link)
    run(["umount", HOSTROOT])


def loaded_and_reading():
    try:
        return module_listed() and read(f"{D}/cpus") == read(ONLINE)
    except OSError:
        return False


def main(c, g):
    if os.environ.get("RRP_DKMS") != "1":
        print("# the dkms checks: not run (scripts/dkms.sh installs the module for the default x86 kernels "
              "before their boot test; RRP_DKMS is not 1)")
        return
    if module_listed():
        rmmod()
    rel = os.uname().release
    before = installed_modules(rel)
    try:
        checks(c, g, rel)
    finally:
        if module_listed():
            rmmod()
        restore(rel, before)


def checks(c, g, rel):
    r = run(["modinfo", "-n", KO_NAME])
    path = r.stdout.strip()
    c.check(f"modinfo -n {KO_NAME}: the module DKMS installed for {rel} ({path})",
            r.returncode == 0 and path.startswith(f"/lib/modules/{rel}/") and "/dkms/" in path, r.stderr)
    r = run(["modprobe", KO_NAME])
    c.check(f"modprobe {KO_NAME} loads it by name (depmod's index) and its files read",
            r.returncode == 0 and loaded_and_reading(), r.stderr)
    same, note = loaded_is(path)
    c.check("the module loaded is the installed file (its build ID note, from /sys/module/.../notes)", same,
            note)
    r = run(["modprobe", "-r", KO_NAME])
    c.check("modprobe -r unloads it, files and all", r.returncode == 0 and not module_listed()
            and not os.path.exists(D), r.stderr)

    loader = next((p for p in ("/usr/lib/systemd/systemd-modules-load", "/lib/systemd/systemd-modules-load")
                   if os.access(p, os.X_OK)), None)
    if not loader:
        c.check("systemd-modules-load exists (the boot-time loader of modules-load.d)", False)
        return
    os.makedirs(os.path.dirname(SNIPPET), exist_ok=True)
    shutil.copy(f"{g.repo}/dkms/resched_probe.conf", SNIPPET)
    try:
        r = run([loader])
        c.check("at boot: systemd-modules-load reads dkms/resched_probe.conf in modules-load.d and loads it",
                r.returncode == 0 and loaded_and_reading(), r.stderr)
    finally:
        os.remove(SNIPPET)
    r = run(["modprobe", "-r", KO_NAME])
    c.check("and modprobe -r unloads it again", r.returncode == 0 and not module_listed(), r.stderr)
