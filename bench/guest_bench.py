# SPDX-License-Identifier: GPL-2.0
"""The benchmark, run in the guest by qemu/guest/main.py (`main.py bench REPO OUT`, which calls
main() here with its checks): each round runs every configuration on every workload, the configurations
interleaved (A B C D E A B C D E ...), and writes OUT/bench.json for bench/report.py."""

import json
import os
import re
import signal
import subprocess
import sys
import time

# The guest tests' shared facts and readers (qemu/guest/lib.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "qemu", "guest"))
from lib import D, KO_NAME, read, resched_function, run, tracefs  # noqa: E402
import latency  # noqa: E402 - qemu/guest/latency.py: the bpftrace script of the same histograms

# The reference module, empty kprobes on the same symbols: its path in the repository.
EMPTY_KO = "bench/modules/empty_kprobe.ko"
EMPTY_NAME = "empty_kprobe"
# Empty handlers on the module's own events by its own mechanisms (tracepoints, kprobe, kretprobe).
EMPTY_PROBES_KO = "bench/modules/empty_probes.ko"
# IPIs sent in a loop from the kernel (bench/modules/send_loop.c): the send workloads.
SEND_LOOP_KO = "bench/modules/send_loop.ko"
SEND_LOOP = "/sys/kernel/debug/send_loop/run"
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "11"))
# BENCH_CONFIGS (comma-separated) runs only some configurations, for a quick look; `make bench` runs all.
CONFIGS = ["baseline", "module", "module_attached", "module_stacks", "module_nolatency", "module_nonoise", "bpftrace",
           "bpftrace_kstack", "bpftrace_latency", "hist_count", "hist_stacks", "empty_kprobe", "empty_probes"]
WORKLOADS = {
    "ipi": ["membarrier", "150"],
    "pingpong": ["pingpong", "0", "1", "3000"],
    "switch": ["switch", "0", "6000"],
    # One operation is one send from CPU 0 (send_loop.c): a reschedule IPI to the idle CPU 2, a
    # call-function-single IPI to it (waiting for the call), a call-function IPI to CPUs 1-3 (waiting).
    "res": ["res", "2", "20000"],
    "cfs": ["cfs", "2", "5000"],
    "cfm": ["cfm", "0", "3000"],
}
SEND_WORKLOADS = {"res", "cfs", "cfm"}
# BENCH_WORKLOADS (comma-separated) runs only some workloads, for a quick look.
if os.environ.get("BENCH_WORKLOADS"):
    WORKLOADS = {w: a for w, a in WORKLOADS.items() if w in os.environ["BENCH_WORKLOADS"].split(",")}
# Where every reschedule request goes through: __resched_curr (7.x), else resched_curr. On 7.x the module
# counts reschedule requests from sched_set_need_resched_tp, which has no tracefs event: its hits are
# counted as __resched_curr's calls (a few more: the calls that find the flag already set).
RSC_FN = resched_function()
# What a user writes today: the same probes, count() keyed by cpu (bpftrace's per-CPU maps).
BPFTRACE = """
kprobe:native_smp_send_reschedule { @res[cpu] = count(); }
kprobe:native_send_call_func_single_ipi { @cfs[cpu] = count(); }
kprobe:native_send_call_func_ipi { @cfm[cpu] = count(); }
kprobe:RSC_FN { @rsc[cpu] = count(); }
kretprobe:ttwu_queue_wakelist /retval/ { @wkl[cpu] = count(); }
""".replace("RSC_FN", RSC_FN)
# What a user writes today for "from where": the same probes keyed by kernel stack. (The kretprobe's
# kstack would be the caller's at return, so WKL counts every call by stack at entry, as module_stacks
# takes it.)
BPFTRACE_KSTACK = """
kprobe:native_smp_send_reschedule { @res[kstack] = count(); }
kprobe:native_send_call_func_single_ipi { @cfs[kstack] = count(); }
kprobe:native_send_call_func_ipi { @cfm[kstack] = count(); }
kprobe:RSC_FN { @rsc[kstack] = count(); }
kprobe:ttwu_queue_wakelist { @wkl[kstack] = count(); }
""".replace("RSC_FN", RSC_FN)
# The module's latency histograms (latency/ipi, latency/resched) as bpftrace computes them: the
# script the boot test compares them with (qemu/guest/latency.py).
BPFTRACE_LATENCY = latency.ALWAYS + latency.bpftrace_program()

# The in-kernel alternative without BPF: ftrace hist triggers doing the same counting (sender x target
# and callback for the one-CPU IPIs, sender for the mask IPIs, resched_curr and queued wakelist wakeups
# through kprobe events), and the same events keyed by stack trace.
HIST_KPROBES = [f"p:rrp_rsc {RSC_FN}", "r:rrp_wkl ttwu_queue_wakelist ret=$retval:u8",
                "p:rrp_wkle ttwu_queue_wakelist"]
HIST_COUNT = {
    "ipi/ipi_send_cpu": "hist:keys=common_cpu,cpu,callback:size=2048",
    "ipi/ipi_send_cpumask": "hist:keys=common_cpu:size=256",
    "kprobes/rrp_rsc": "hist:keys=common_cpu:size=256",
    "kprobes/rrp_wkl": "hist:keys=common_cpu:size=256 if ret != 0",
}
HIST_STACKS = {
    "ipi/ipi_send_cpu": "hist:keys=stacktrace:size=2048",
    "ipi/ipi_send_cpumask": "hist:keys=stacktrace:size=2048",
    "kprobes/rrp_rsc": "hist:keys=stacktrace:size=2048",
    "kprobes/rrp_wkle": "hist:keys=stacktrace:size=2048",
}


# The probes of each configuration whose cost per hit is compared, as tracefs can count their events:
# (tracepoint events, kprobe_events definitions). The module's and empty_probes' are the same set.
MODULE_TRACEPOINTS = ["ipi/ipi_send_cpu", "ipi/ipi_send_cpumask", "csd/csd_queue_cpu", "sched/sched_switch",
                      "sched/sched_wakeup", "sched/sched_process_fork", "sched/sched_process_exit",
                      "irq_vectors/reschedule_entry", "irq_vectors/call_function_single_entry",
                      "irq_vectors/call_function_entry"]
# What noise/ adds (noise_enable 1, as loaded): the interruption tracepoints.
NOISE_TRACEPOINTS = ["sched/sched_wake_idle_without_ipi", "irq/irq_handler_entry", "irq/irq_handler_exit",
                     "irq/softirq_entry", "irq/softirq_exit", "csd/csd_function_entry", "csd/csd_function_exit",
                     "irq_vectors/reschedule_exit", "irq_vectors/call_function_single_exit",
                     "irq_vectors/call_function_exit", "irq_vectors/local_timer_entry", "irq_vectors/local_timer_exit",
                     "irq_vectors/irq_work_entry", "irq_vectors/irq_work_exit"]
HIT_SETS = {
    "module": (MODULE_TRACEPOINTS + NOISE_TRACEPOINTS, [f"p:rrp_hit_rsc {RSC_FN}"]),
    # The module with noise_enable 0 (sched_wake_idle_without_ipi stays: it is not of noise/).
    "module_nonoise": (MODULE_TRACEPOINTS + NOISE_TRACEPOINTS[:1], [f"p:rrp_hit_rsc {RSC_FN}"]),
    "empty_kprobe": ([], ["p:rrp_hit_res native_smp_send_reschedule", "p:rrp_hit_cfs native_send_call_func_single_ipi",
                          "p:rrp_hit_cfm native_send_call_func_ipi", f"p:rrp_hit_rsc {RSC_FN}",
                          "p:rrp_hit_wkl ttwu_queue_wakelist"]),
}
HIT_SETS["empty_probes"] = HIT_SETS["module"]
HIT_TRIGGER = "hist:keys=common_cpu:size=256"


def hit_events(cfg):
    """The tracefs events counting the hits of `cfg`'s probes."""
    base = cfg if cfg in HIT_SETS else "module" if cfg.startswith("module") else cfg
    tps, kps = HIT_SETS[base]
    return [t for t in tps if os.path.exists(f"/sys/kernel/tracing/events/{t}")] + \
        ["kprobes/" + k.split()[0][2:] for k in kps]


def count_hits(g):
    """Probe hits per operation of each configuration in HIT_SETS, on each workload: one untimed run per
    workload with nothing loaded, each probed event counted by a tracefs hist trigger (the kernel's own
    count, not the module's). {workload: {cfg: hits per op}}."""
    kprobes = sorted({k for _, kps in HIT_SETS.values() for k in kps})
    for k in kprobes:
        tracefs("kprobe_events", k + "\n", append=True)
    events = sorted({e for cfg in HIT_SETS for e in hit_events(cfg)})
    out = {}
    try:
        for e in events:
            tracefs(f"events/{e}/trigger", HIT_TRIGGER)
        for w in WORKLOADS:
            for e in events:
                tracefs(f"events/{e}/trigger", HIT_TRIGGER + ":clear", append=True)
            r = run(workload_cmd(g, w), timeout=600)
            m = re.search(r"ops=(\d+) ns_per_op=([\d.]+)", r.stdout)
            if r.returncode != 0 or not m:
                raise RuntimeError(f"{w}: {r.stdout} {r.stderr}")
            ops = int(m.group(1))
            per = {e: int(re.search(r"Hits: (\d+)", read(f"/sys/kernel/tracing/events/{e}/hist")).group(1)) / ops
                   for e in events}
            out[w] = {cfg: sum(per[e] for e in hit_events(cfg)) for cfg in HIT_SETS}
            print(f"# {w}: probe hits per op: " + ", ".join(f"{e} {n:.2f}" for e, n in per.items() if n), flush=True)
    finally:
        for e in events:
            try:
                tracefs(f"events/{e}/trigger", "!" + HIT_TRIGGER)
            except OSError as x:
                print(f"# cleanup {e}: {x}")
        tracefs("kprobe_events", "")
    return out


def workload_cmd(g, workload):
    if workload in SEND_WORKLOADS:
        spec = " ".join(WORKLOADS[workload])
        return ["taskset", "-c", "0", "sh", "-c", f"echo {spec} > {SEND_LOOP} && cat {SEND_LOOP}"]
    return [g.load] + WORKLOADS[workload]


def probe_hits():
    return sum(int(m) for m in re.findall(r"hits=(\d+)", read(f"{D}/probes")))


class Config:
    """One configuration, set up for the workloads run within `with`."""

    def __init__(self, name, g):
        self.name = name
        self.g = g
        self.bpf = None
        self.triggers = {}

    def __enter__(self):
        if self.name.startswith("module"):
            subprocess.run(["insmod", self.g.ko], check=True)
            if self.name == "module_stacks":
                with open(f"{D}/stacks_enable", "w") as f:
                    f.write("1")
            if self.name == "module_nolatency":
                with open(f"{D}/latency_enable", "w") as f:
                    f.write("0")
            if self.name == "module_nonoise":
                with open(f"{D}/noise_enable", "w") as f:
                    f.write("0")
        elif self.name == "empty_kprobe":
            subprocess.run(["insmod", f"{self.g.repo}/{EMPTY_KO}"], check=True)
        elif self.name == "empty_probes":
            subprocess.run(["insmod", f"{self.g.repo}/{EMPTY_PROBES_KO}"], check=True)
        elif self.name.startswith("hist"):
            self.triggers = HIST_STACKS if self.name == "hist_stacks" else HIST_COUNT
            for k in HIST_KPROBES:
                tracefs("kprobe_events", k + "\n", append=True)
            for event, trig in self.triggers.items():
                tracefs(f"events/{event}/trigger", trig)
        elif self.name.startswith("bpftrace"):
            prog = {"bpftrace_kstack": BPFTRACE_KSTACK, "bpftrace_latency": BPFTRACE_LATENCY}.get(self.name, BPFTRACE)
            self.bpf = subprocess.Popen(["bpftrace", "-e", prog], stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
            line = self.bpf.stdout.readline()  # "Attaching 5 probes..."
            if "Attaching" not in line:
                raise RuntimeError(f"bpftrace did not attach: {line}")
        time.sleep(0.5)  # let code patching and its IPIs settle
        return self

    def __exit__(self, *exc):
        if self.name.startswith("module"):
            subprocess.run(["rmmod", KO_NAME], check=True)
        elif self.name == "empty_kprobe":
            subprocess.run(["rmmod", EMPTY_NAME], check=True)
        elif self.name == "empty_probes":
            subprocess.run(["rmmod", "empty_probes"], check=True)
        elif self.name.startswith("hist"):
            for event, trig in self.triggers.items():
                tracefs(f"events/{event}/trigger", "!" + trig)
            tracefs("kprobe_events", "")
        elif self.bpf:
            self.bpf.send_signal(signal.SIGINT)
            self.bpf.communicate(timeout=120)

    def run(self, workload):
        cmd = workload_cmd(self.g, workload)
        if self.name == "module_attached":
            cmd = [self.g.attach] + cmd
        hits0 = probe_hits() if self.name.startswith("module") else 0
        r = run(cmd, timeout=600)
        hits1 = probe_hits() if self.name.startswith("module") else 0
        m = re.search(r"ops=(\d+) ns_per_op=([\d.]+)", r.stdout)
        if r.returncode != 0 or not m:
            raise RuntimeError(f"{cmd}: {r.stdout} {r.stderr}")
        ops = int(m.group(1))
        return float(m.group(2)), (hits1 - hits0) / ops


def main(c, g):
    global CONFIGS
    if os.environ.get("BENCH_CONFIGS"):
        CONFIGS = [cfg for cfg in CONFIGS if cfg in os.environ["BENCH_CONFIGS"].split(",")]
    samples = {w: {cfg: [] for cfg in CONFIGS} for w in WORKLOADS}
    hits = {w: [] for w in WORKLOADS}
    # The probe hits per operation are read in the first of the module's configurations run.
    hits_cfg = next((cfg for cfg in CONFIGS if cfg.startswith("module")), None)
    kprobe_kinds = ""
    errors = []
    start = time.time()
    subprocess.run(["insmod", f"{g.repo}/{SEND_LOOP_KO}"], check=True)
    hits_by_cfg = count_hits(g)
    for rnd in range(ROUNDS):
        for cfg in CONFIGS:
            try:
                with Config(cfg, g) as conf:
                    if cfg == hits_cfg and not kprobe_kinds:
                        kprobe_kinds = read("/sys/kernel/debug/kprobes/list")
                    for w in WORKLOADS:
                        ns, h = conf.run(w)
                        samples[w][cfg].append(ns)
                        if cfg == hits_cfg:
                            hits[w].append(h)
            except Exception as e:  # noqa: BLE001 - recorded and failed below
                errors.append(f"round {rnd} {cfg}: {e}")
        print(f"# round {rnd + 1}/{ROUNDS} done at {time.time() - start:.0f} s", flush=True)
    subprocess.run(["rmmod", "send_loop"], check=True)

    with open(f"{g.out}/bench.json", "w") as f:
        json.dump({"rounds": ROUNDS, "workloads": WORKLOADS, "samples": samples, "probe_hits_per_op": hits,
                   "hits_per_op_by_config": hits_by_cfg,
                   "kprobes_list": kprobe_kinds, "cpus": os.cpu_count(), "kernel": os.uname().release}, f)
    c.check(f"every configuration ran on every workload, {ROUNDS} rounds, interleaved", not errors,
            "\n".join(errors))
    c.check("the module's probes were hit by every workload", all(h and min(h) > 0 for h in hits.values()),
            json.dumps(hits))
    print("# kprobe kinds with the module loaded:")
    print("# " + "\n# ".join(kprobe_kinds.strip().splitlines()))
