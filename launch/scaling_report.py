"""The scaling benchmark's tables, projection and plots (launch/scaling-benchmark.sh runs it).

    scaling_report.py OUT CORES CPU WHERE

Reads OUT/runs.csv (one row per layout and round) and OUT/allreduce-2.json (when measured); writes
OUT/scaling.csv (one row per layout: median and min–max over rounds), OUT/projection.csv,
OUT/results.md and three plots.
"""
import csv
import json
import os
import statistics
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

out, cores, cpu, where = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
runs = list(csv.DictReader(open(f"{out}/runs.csv")))
rounds = sorted({int(r["round"]) for r in runs})


def key(r):
    return (r["kind"], int(r["ranks"]), int(r["threads"]))


layouts = []
for r in runs:
    if key(r) not in layouts:
        layouts.append(key(r))


def busy(workers):
    return min(workers, cores)


# Peaks: the maximum over every sample of every run with the same number of busy cores.
fma_peak, gemm_peak = {}, {}
for r in runs:
    b = busy(int(r["ranks"]) * int(r["threads"]))
    fma_peak[b] = max(fma_peak.get(b, 0), float(r["fma_peak_gflops"]))
    gemm_peak[b] = max(gemm_peak.get(b, 0), float(r["gemm_peak_gflops"]))


def by_round(kind, ranks, threads):
    return {int(r["round"]): r for r in runs if key(r) == (kind, ranks, threads)}


rows = []
for kind, ranks, threads in layouts:
    per = by_round(kind, ranks, threads)
    rates = [float(per[k]["images_per_sec"]) for k in sorted(per)]
    base_kind = by_round(kind, 1, 1)
    # Speed-up per round against the 1×1 run of the same round; the table gives their median.
    ratios = [float(per[k]["images_per_sec"]) / float(base_kind[k]["images_per_sec"]) for k in sorted(per) if k in base_kind]
    workers = ranks * threads
    median_rate = statistics.median(rates)
    base_median = statistics.median(float(r["images_per_sec"]) for r in base_kind.values())
    speedup = median_rate / base_median
    over = workers > cores
    efficiency = None if over else speedup / workers
    gflops = statistics.median(float(per[k]["gflops"]) for k in per)
    b = busy(workers)
    rows.append(dict(
        kind=kind, ranks=ranks, threads=threads, workers=workers, batch=per[min(per)]["batch"],
        median=median_rate, low=min(rates), high=max(rates), speedup=speedup,
        speedup_low=min(ratios) if ratios else speedup, speedup_high=max(ratios) if ratios else speedup,
        efficiency=efficiency, oversubscribed=over, gflops=gflops, fma=fma_peak[b], gemm=gemm_peak[b],
        reduction=statistics.median(float(per[k]["reduction_ms"]) for k in per),
        waiting=statistics.median(float(per[k]["waiting_ms"]) for k in per),
        memory=statistics.median(float(per[k]["peak_mib_rank0"]) for k in per)))

with open(f"{out}/scaling.csv", "w") as f:
    fields = ["kind", "ranks", "threads", "workers", "batch", "median", "low", "high", "speedup", "efficiency", "oversubscribed",
              "gflops", "fma", "gemm", "reduction", "waiting", "memory"]
    f.write(",".join(fields) + "\n")
    for r in rows:
        f.write(",".join("" if r[k] is None else (f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k])) for k in fields) + "\n")

lines = [f"{cpu}; {where}; the median and min–max of {len(rounds)} rounds, each layout once per round.", "",
         "| kind | ranks × threads | batch | images/s: median (min–max) | speed-up | efficiency | GFLOP/s (of the FMA peak) | reduction ms | waiting ms | peak MiB |",
         "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
for r in rows:
    eff = "oversubscribed" if r["oversubscribed"] else f"{r['efficiency']:.2f}"
    lines.append(f"| {r['kind']} | {r['ranks']} × {r['threads']} | {r['batch']} | {r['median']:,.0f} ({r['low']:,.0f}–{r['high']:,.0f}) | "
                 f"{r['speedup']:.2f} | {eff} | {r['gflops']:.1f} ({r['gflops'] / r['fma']:.0%} of {r['fma']:.0f}) | "
                 f"{r['reduction']:.2f} | {r['waiting']:.2f} | {r['memory']:.0f} |")
lines += ["", "Efficiency is the speed-up over min(workers, cores); the FMA peak of a row is the maximum of every "
          "sample taken with that many busy cores (5 per run)."]

# Projection: one rank per node doing the best single-rank rate measured here; the deterministic
# gradient's allreduce (134,168 int64 = 1,073,344 bytes) as a ring: 2(P−1)·α + 2(P−1)/P·S/B, on a
# 25 Gb/s network (3.1 GB/s, α = 20 µs), stated as an assumption. B is 45% of the line rate: what
# 1 Gbit/s links delivered to this allreduce between 3 hosts (launch/network-chaos.sh, the thin case;
# docs/distributed.md).
node = max(r["median"] for r in rows if r["ranks"] == 1)
S = 134168 * 8
alpha, bandwidth = 20e-6, 0.45 * 3.1e9


def ring(P):
    return 0 if P == 1 else 2 * (P - 1) * alpha + 2 * (P - 1) / P * S / bandwidth


projection = []
for P in [1, 2, 4, 8, 16, 32, 64, 128, 256]:
    t = ring(P)
    weak = P * 128 / (128 / node + t)
    strong = 4096 / (4096 / P / node + t)
    projection.append((P, weak, weak / (P * node), strong, strong / (P * node)))
with open(f"{out}/projection.csv", "w") as f:
    f.write("nodes,weak_images_per_sec,weak_efficiency,strong_images_per_sec,strong_efficiency\n")
    for p in projection:
        f.write(f"{p[0]},{p[1]:.0f},{p[2]:.3f},{p[3]:.0f},{p[4]:.3f}\n")
measured = ""
if os.path.exists(f"{out}/allreduce-2.json"):
    fit = json.load(open(f"{out}/allreduce-2.json"))["fit"]["int64"]
    measured = f" Measured here over shared memory (2 ranks): α = {fit['latency_seconds'] * 1e6:.0f} µs, B = {fit['bytes_per_second'] / 1e9:.2f} GB/s."
assumptions = (f"One rank per node at {node:,.0f} images/s (the best one-rank rate here); the 1.07 MB int64 allreduce "
               f"as a ring, 2(P−1)·α + 2(P−1)/P·S/B, on a 25 Gb/s network (α = 20 µs; B = 1.4 GB/s, 45% of the line rate, as "
               f"measured at 1 Gbit/s between 3 hosts); no overlap of "
               f"compute and communication; strong scaling at a global batch of 4,096." + measured)
lines += ["", "## Projection to a cluster", "", assumptions, "",
          "| nodes | weak (128 per node): images/s | efficiency | strong (4,096 global): images/s | efficiency |",
          "| --- | --- | --- | --- | --- |"]
lines += [f"| {p[0]} | {p[1]:,.0f} | {p[2]:.2f} | {p[3]:,.0f} | {p[4]:.2f} |" for p in projection]
open(f"{out}/results.md", "w").write("## Measured\n\n" + "\n".join(lines) + "\n")


def shade_oversubscribed(ax, top):
    if top > cores:
        ax.axvspan(cores + 0.5, top + 0.5, color="0.92", zorder=0)
        ax.text(cores + 0.6, ax.get_ylim()[1] * 0.97, f"oversubscribed\n(more workers than {cores} cores)", va="top", fontsize=8, color="0.35")


def finish(fig, ax, top, ymax, xlabel, ylabel, title, legend, name):
    """Axes over 1…top workers, the oversubscribed region shaded, labels, and the file."""
    ax.set_xlim(0.5, top + 0.5)
    ax.set_ylim(0, ymax)
    shade_oversubscribed(ax, top)
    ax.set_xticks(list(range(1, top + 1)))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{title}\n{cpu}", fontsize=10)
    ax.legend(loc=legend, fontsize=8)
    fig.tight_layout()
    fig.savefig(f"{out}/{name}")


# 1. Strong scaling: one marker per layout, labelled, error bars over the rounds, dashed ideal.
strong = [r for r in rows if r["kind"] == "strong"]
fig, ax = plt.subplots(figsize=(7, 4.6), dpi=110)
top = max(r["workers"] for r in strong)
base = next(r["median"] for r in strong if r["workers"] == 1)
xs = list(range(1, top + 1))
ax.plot(xs, [base * min(x, cores) for x in xs], "--", color="0.5", label=f"ideal from 1×1 (up to {cores} cores)")
# Layouts with as many workers (1×2 and 2×1) stand side by side, not on top of each other.
offsets = {}
for r in strong:
    same = [q for q in strong if q["workers"] == r["workers"]]
    offsets[id(r)] = 0.08 * (same.index(r) - (len(same) - 1) / 2)
for r in strong:
    ax.errorbar(r["workers"] + offsets[id(r)], r["median"], yerr=[[r["median"] - r["low"]], [r["high"] - r["median"]]], fmt="o",
                color="tab:red" if r["oversubscribed"] else "tab:blue", capsize=4, markersize=7)
    left = offsets[id(r)] < 0  # the left one of a pair is labelled on its left
    ax.annotate(f"{r['ranks']}×{r['threads']}", (r["workers"] + offsets[id(r)], r["median"]), textcoords="offset points",
                xytext=(-8 if left else 8, -4), ha="right" if left else "left", fontsize=9)
finish(fig, ax, top, max(max(r["high"] for r in strong), base * min(top, cores)) * 1.15, "workers (ranks × threads)",
       "images/s (median, bars: min–max of rounds)", "Strong scaling, global batch 128", "lower right", "strong-throughput.png")

# 2. Weak scaling efficiency against the cores used, the oversubscribed region shaded.
weak = [r for r in rows if r["kind"] == "weak"]
fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
top = max(r["workers"] for r in weak)
for r in weak:
    used = busy(r["workers"])
    eff, lo, hi = r["speedup"] / used, r["speedup_low"] / used, r["speedup_high"] / used
    ax.errorbar(r["workers"], eff, yerr=[[eff - lo], [hi - eff]], fmt="o", capsize=4, markersize=7,
                color="tab:red" if r["oversubscribed"] else "tab:blue")
    ax.annotate(f"{r['ranks']}×{r['threads']}", (r["workers"], eff), textcoords="offset points", xytext=(8, -4), fontsize=9)
ax.axhline(1, ls="--", color="0.5", label="ideal")
finish(fig, ax, top, 1.3, "ranks (64 images each, one thread)", "efficiency over min(ranks, cores)",
       "Weak scaling efficiency", "lower left", "weak-efficiency.png")

# 3. The projection, nodes on a log2 axis, its assumptions in the caption.
fig, ax = plt.subplots(figsize=(7, 4.8), dpi=110)
ax.plot([p[0] for p in projection], [p[2] for p in projection], "o-", label="weak: 128 images per node")
ax.plot([p[0] for p in projection], [p[4] for p in projection], "s-", label="strong: 4,096 images per step")
ax.set_xscale("log", base=2)
ax.set_xticks([p[0] for p in projection])
ax.set_xticklabels([str(p[0]) for p in projection])
ax.set_ylim(0, 1.05)
ax.set_xlabel("nodes (one rank each)")
ax.set_ylabel("projected efficiency")
ax.set_title("Projected efficiency on a cluster", fontsize=10)
ax.legend(loc="lower left", fontsize=8)
fig.text(0.01, 0.01, "\n".join(textwrap.wrap(assumptions, 125)), fontsize=6.5, va="bottom")
fig.tight_layout(rect=(0, 0.12, 1, 1))
fig.savefig(f"{out}/projection.png")
