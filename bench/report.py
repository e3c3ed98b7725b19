#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Turns the guest's raw benchmark samples (bench/out/raw.json) into bench/out/results.json, a Markdown
table (results.md) and a bar chart (results.png).  Usage: bench/report.py BENCH_OUT_DIR"""

import datetime
import json
import statistics
import sys

out = sys.argv[1]
raw = json.load(open(f"{out}/raw.json"))
# The send workloads (bench/modules/send_loop.c): one operation is one IPI send.
SEND_WORKLOADS = {"res", "cfs", "cfm"}
# The configurations in the order bench/guest_bench.py ran them (its samples keep that order).
CONFIGS = list(next(iter(raw["samples"].values())))

# Whose probe hits divide each configuration's added time: its own probes' hits, counted by tracefs in an
# untimed run (bench/guest_bench.py count_hits): bpftrace's five kprobes are the empty kprobes' set.
HIT_SET = {"module": "module", "module_attached": "module", "module_stacks": "module",
           "module_nolatency": "module", "module_nonoise": "module_nonoise", "empty_probes": "empty_probes", "empty_kprobe": "empty_kprobe",
           "bpftrace": "empty_kprobe", "bpftrace_kstack": "empty_kprobe"}
by_cfg = raw.get("hits_per_op_by_config", {})

results = {"workloads": {}}
for w, per_cfg in raw["samples"].items():
    results["workloads"][w] = {
        cfg: {
            "ns_per_op_median": statistics.median(v),
            "ns_per_op_min": min(v),
            "ns_per_op_max": max(v),
            "probe_hits_per_op": by_cfg.get(w, {}).get(HIT_SET.get(cfg), float("nan")),
            "runs": len(v),
        }
        for cfg, v in per_cfg.items() if v
    }
json.dump(results, open(f"{out}/results.json", "w"), indent=2)


def derived(w, cfg):
    """The configuration's time per operation over the baseline's, and its added time per probe hit."""
    r = results["workloads"][w]
    base = r["baseline"]["ns_per_op_median"]
    med = r[cfg]["ns_per_op_median"]
    hits = r[cfg]["probe_hits_per_op"]
    return med / base, (med - base) / hits if hits else float("nan")


lines = [
    f"Measured {datetime.date.today()} in one guest run: {raw['rounds']} interleaved rounds, "
    f"{raw['cpus']} vCPUs under QEMU TCG (software emulation, kernel {raw['kernel']}). Absolute times are "
    "emulated and only the ratios count. Overhead is relative to `baseline` (module not loaded); "
    "ns per hit is the added time per operation divided by the configuration's own probe hits per operation "
    "(every probe it registers, counted by tracefs hist triggers in an untimed run).",
    "",
    "| workload | configuration | ns/op median | min - max | vs baseline | added ns per probe hit |",
    "|---|---|---:|---:|---:|---:|",
]
for w in results["workloads"]:
    for cfg in CONFIGS:
        r = results["workloads"][w].get(cfg)
        if not r:
            continue
        ratio, per_hit = derived(w, cfg)
        per_hit_s = "" if cfg == "baseline" or per_hit != per_hit else f"{per_hit:,.0f}"
        lines.append(f"| {w} | {cfg} | {r['ns_per_op_median']:,.0f} | {r['ns_per_op_min']:,.0f} - "
                     f"{r['ns_per_op_max']:,.0f} | {ratio:.3f}x | {per_hit_s} |")
lines += ["", "Probe hits per operation: " + "; ".join(
    f"{w}: " + ", ".join(f"{cfg} {n:.2f}" for cfg, n in by_cfg.get(w, {}).items()) for w in results["workloads"]),
    ""]

def noise(w):
    """Half the baseline's min-max spread: an overhead below it cannot be told from nothing."""
    b = results["workloads"][w]["baseline"]
    return (b["ns_per_op_max"] - b["ns_per_op_min"]) / 2


# A workload whose baseline spreads by more than this (half its min-max range over its median) decides
# nothing: under instruction counting the others spread by under 1%, `ipi` by about 10%.
NOISY = 0.02


def verdict(ok, reference, w):
    """`reference` is the overhead compared against (bpftrace's, the empty kprobe's, or the difference
    for attached): when it is within the baseline's spread, or the workload itself is noisy, the
    comparison decides nothing."""
    b = results["workloads"][w]["baseline"]
    if noise(w) > NOISY * b["ns_per_op_median"]:
        return (f"not measurable (a noisy workload: the baseline spreads +/-{noise(w) / b['ns_per_op_median']:.0%})")
    if abs(reference) < noise(w):
        return f"not measurable (within the baseline's spread, +/-{noise(w):,.0f} ns/op)"
    return "met" if ok else "NOT met"


targets = []
for w in results["workloads"]:
    r = results["workloads"][w]
    base = r["baseline"]["ns_per_op_median"]
    # Counting alone: the module with latency recording off (its default is on; that cost is compared
    # separately below).
    counting = "module_nolatency" if "module_nolatency" in r else "module"
    if counting not in r:
        continue
    mod = r[counting]["ns_per_op_median"] - base
    if "bpftrace" in r:
        bpf = r["bpftrace"]["ns_per_op_median"] - base
        targets.append(f"- {w}: {counting} overhead {mod:,.0f} ns/op vs bpftrace {bpf:,.0f} ns/op "
                       f"(target <= 0.5x): {verdict(mod <= 0.5 * bpf, bpf, w=w)}")
    if "module_stacks" in r and "bpftrace_kstack" in r:
        st = r["module_stacks"]["ns_per_op_median"] - base
        bst = r["bpftrace_kstack"]["ns_per_op_median"] - base
        if noise(w) > NOISY * base:
            how = "not measurable (a noisy workload)"
        elif abs(st - bst) < noise(w):
            how = f"the same within the baseline's spread (+/-{noise(w):,.0f} ns/op)"
        else:
            how = "lower" if st < bst else "higher"
        targets.append(f"- {w}: module_stacks overhead {st:,.0f} ns/op vs bpftrace @[kstack] {bst:,.0f} ns/op "
                       f"(no target set): {how}")
    if "hist_count" in r:
        hc = r["hist_count"]["ns_per_op_median"] - base
        targets.append(f"- {w}: {counting} overhead {mod:,.0f} ns/op vs hist triggers {hc:,.0f} ns/op "
                       f"(target <= 0.5x): {verdict(mod <= 0.5 * hc, hc, w=w)}")
    if "module_stacks" in r and "hist_stacks" in r:
        st = r["module_stacks"]["ns_per_op_median"] - base
        hs = r["hist_stacks"]["ns_per_op_median"] - base
        targets.append(f"- {w}: module_stacks overhead {st:,.0f} ns/op vs hist keys=stacktrace {hs:,.0f} ns/op "
                       f"(target <= 1.0x): {verdict(st <= hs, hs, w=w)}")
    if "empty_probes" in r:
        _, mod_hit = derived(w, counting)
        _, ep_hit = derived(w, "empty_probes")
        targets.append(f"- {w}: {counting} {mod_hit:,.0f} ns per probe hit vs empty handlers on the same events by "
                       f"the same mechanisms {ep_hit:,.0f}: the handlers themselves add {mod_hit - ep_hit:,.0f} "
                       f"per hit (no target)")
    if "empty_kprobe" in r:
        emp = r["empty_kprobe"]["ns_per_op_median"] - base
        _, mod_hit = derived(w, counting)
        _, empty_hit = derived(w, "empty_kprobe")
        targets.append(f"- {w}: per probe hit, {counting} {mod_hit:,.0f} ({r[counting]['probe_hits_per_op']:.2f} "
                       f"hits/op, every probe of the module) vs an empty kprobe {empty_hit:,.0f} "
                       f"({r['empty_kprobe']['probe_hits_per_op']:.2f} hits/op) = {mod_hit / empty_hit:.2f}x "
                       f"(target <= 1.2x): {verdict(mod_hit <= 1.2 * empty_hit, emp, w=w)}")
        if w in SEND_WORKLOADS:
            ratio = mod / emp if emp > 0 else float("nan")
            targets.append(f"- {w}: IPI counting through the tracepoints, per probe hit: {mod_hit / empty_hit:.2f}x "
                           f"an empty kprobe (target < 1.0x): {verdict(mod_hit < empty_hit, emp, w=w)}; per send "
                           f"(for the record, no target) {counting} {mod:,.0f} vs {emp:,.0f} = {ratio:.2f}x: the "
                           f"module's {r[counting]['probe_hits_per_op']:.2f} hits per send (the send, each queued "
                           f"call, each receipt) against the kprobe's {r['empty_kprobe']['probe_hits_per_op']:.2f}")
    if "module_nolatency" in r and "bpftrace_latency" in r:
        nl = r["module_nolatency"]["ns_per_op_median"] - base
        lat = r["module"]["ns_per_op_median"] - base - nl
        bl = r["bpftrace_latency"]["ns_per_op_median"] - base
        ratio = r["module"]["ns_per_op_median"] / r["module_nolatency"]["ns_per_op_median"]
        targets.append(f"- {w}: latency recording adds {lat:,.0f} ns/op to the module (module / module_nolatency "
                       f"= {ratio:.3f}) vs bpftrace computing the same histograms {bl:,.0f} ns/op "
                       f"(target < 1.0x): {verdict(lat < bl, bl, w=w)}")
# Attaching's target (issue 23: module_attached / module <= 1.05 on switch; an older line here said 1.01)
# is judged once, below, with the always-on targets.
lines += ["Targets:", *targets, ""]

# The always-on targets: the module as loaded (latency recording on) against the alternatives and the floor
# (empty handlers on the module's own events by the same mechanisms), counting alone against the floor,
# the handlers' own cost per hit, and attaching. Instructions, under instruction counting.
ALWAYS_ON = {"vs_bpftrace": 0.5, "vs_hist": 0.5, "vs_floor": 3.0, "counting_vs_floor": 2.0,
             "handler_above_floor": 25.0, "attached": 1.05}


def over(w, cfg):
    r = results["workloads"][w]
    return r[cfg]["ns_per_op_median"] - r["baseline"]["ns_per_op_median"] if cfg in r else float("nan")


def judged(ok, w, reference):
    v = verdict(ok, reference, w)
    return {"met": "met", "NOT met": "**NOT met**"}.get(v, "n/m")


rows = ["| workload | module | counting alone | bpftrace | hist triggers | floor | module / bpftrace | "
        "module / hist | module / floor | counting / floor | handlers above the floor per hit | noise/ adds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
always_on = {}
for w in results["workloads"]:
    r = results["workloads"][w]
    if not {"module", "module_nolatency", "empty_probes"} <= set(r):
        continue
    m, c, f = over(w, "module"), over(w, "module_nolatency"), over(w, "empty_probes")
    b, h = over(w, "bpftrace"), over(w, "hist_count")
    _, c_hit = derived(w, "module_nolatency")
    _, f_hit = derived(w, "empty_probes")
    v = {"vs_bpftrace": (m / b, judged(m <= ALWAYS_ON["vs_bpftrace"] * b, w, b)),
         "vs_hist": (m / h, judged(m <= ALWAYS_ON["vs_hist"] * h, w, h)),
         "vs_floor": (m / f, judged(m <= ALWAYS_ON["vs_floor"] * f, w, f)),
         "counting_vs_floor": (c / f, judged(c <= ALWAYS_ON["counting_vs_floor"] * f, w, f)),
         "handler_above_floor": (c_hit - f_hit, judged(c_hit - f_hit <= ALWAYS_ON["handler_above_floor"], w, f))}
    always_on[w] = {k: {"value": x, "verdict": y} for k, (x, y) in v.items()}
    cell = lambda k, fmt: f"{fmt.format(v[k][0])} {v[k][1]}"  # noqa: E731
    rows.append(f"| {w} | {m:,.0f} | {c:,.0f} | {b:,.0f} | {h:,.0f} | {f:,.0f} | {cell('vs_bpftrace', '{:.2f}x')} | "
                f"{cell('vs_hist', '{:.2f}x')} | {cell('vs_floor', '{:.1f}x')} | {cell('counting_vs_floor', '{:.1f}x')} | "
                f"{cell('handler_above_floor', '{:,.0f}')} | {m - over(w, 'module_nonoise'):,.0f} |")
att_line = []
sw = results["workloads"].get("switch", {})
if "module_attached" in sw and "module" in sw:
    att = sw["module_attached"]["ns_per_op_median"] / sw["module"]["ns_per_op_median"]
    diff = sw["module_attached"]["ns_per_op_median"] - sw["module"]["ns_per_op_median"]
    always_on["attached"] = {"value": att, "verdict": judged(att <= ALWAYS_ON["attached"], "switch", diff)}
    att_line = [f"Attaching: switch module_attached / module = {att:.3f} (target <= {ALWAYS_ON['attached']}): "
                f"{always_on['attached']['verdict']}.", ""]
lines += ["Always-on targets (added instructions per operation; module: as loaded, latency recording on; "
          "counting alone: latency off; floor: empty handlers on the module's events; targets: module <= 0.5x "
          "bpftrace and hist triggers and <= 3x the floor, counting alone <= 2x the floor, handlers <= 25 above "
          "the floor per hit; noise/ adds: module - module_nonoise, the interruption probes as loaded; n/m: not "
          "measurable, within the baseline's spread or a noisy workload):", "",
          *rows, "", *att_line]
results["always_on"] = always_on
json.dump(results, open(f"{out}/results.json", "w"), indent=2)
open(f"{out}/results.md", "w").write("\n".join(lines))
print("\n".join(lines))

import matplotlib  # noqa: E402 - only needed for the chart

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ws = list(results["workloads"])
shown = [c for c in CONFIGS if c != "baseline"]
colors = plt.get_cmap("tab20").colors
fig, ax = plt.subplots(figsize=(10, 4.8))
width = 0.8 / len(shown)
for i, cfg in enumerate(shown):
    vals, lo, hi = [], [], []
    for w in ws:
        r = results["workloads"][w]
        base = r["baseline"]["ns_per_op_median"]
        med = r[cfg]["ns_per_op_median"]
        vals.append(med / base)
        lo.append((med - r[cfg]["ns_per_op_min"]) / base)
        hi.append((r[cfg]["ns_per_op_max"] - med) / base)
    xs = [x + (i - (len(shown) - 1) / 2) * width for x in range(len(ws))]
    ax.bar(xs, vals, width, yerr=[lo, hi], capsize=2, label=cfg, color=colors[(2 * i) % 20 + (2 * i) // 20])
ax.axhline(1, color="black", linewidth=0.8)
ax.set_yscale("log")
ax.set_xticks(range(len(ws)), ws)
ax.set_ylabel("time per operation / baseline (log; median, bars: min-max)")
ax.set_title(f"rust_resched_probe overhead per workload ({datetime.date.today()}, QEMU TCG, "
             f"{raw['cpus']} vCPUs: ratios only)")
ax.legend(fontsize=7, ncol=2)
fig.tight_layout()
fig.savefig(f"{out}/results.png", dpi=110)
