"""The table of launch/peer-benchmark.sh: runs.jsonl → peers.csv, peers.md, peers.png (and, with
--docs DIR, the same under this CPU's heading in DIR/performance.md, the chart in DIR/images/).

    python3 launch/peers/report.py RUNS.jsonl OUT_DIR [--docs DOCS_DIR]
"""
import argparse
import csv
import datetime
import json
import os
import re
import statistics

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("runs")
parser.add_argument("out")
parser.add_argument("--docs")
args = parser.parse_args()

rows = [json.loads(line) for line in open(args.runs) if line.strip()]
host = next(r for r in rows if r["kind"] == "host")
runs = [r for r in rows if r["kind"] != "host"]
# Every run ran once per round: one row per run, the median of its rounds and their range.
by_name = {}
for r in runs:
    by_name.setdefault(r["name"], []).append(r)
merged_runs = []
for name, rs in by_name.items():
    merged = dict(rs[0])
    merged["passes"] = [r["imagesPerSecond"] for r in rs]
    merged["imagesPerSecond"] = statistics.median(merged["passes"])
    merged_runs.append(merged)
peers = [r for r in merged_runs if r["kind"] == "peer"]
ours = [r for r in merged_runs if r["kind"] == "vae-dist"]
runs = peers + ours
# Each run is compared with the best peer of its own precision (fp32 unless --precision bf16 added
# bf16 runs: PyTorch autocast, Keras mixed_bfloat16, vae-dist --precision bf16).
precision = lambda r: r.get("precision", "fp32")  # noqa: E731
precisions = sorted({precision(r) for r in runs}, key=lambda p: p != "fp32")
best_peer_of = {p: max((r for r in peers if precision(r) == p), key=lambda r: r["imagesPerSecond"], default=None)
                for p in precisions}
best_ours_of = {p: max((r for r in ours if precision(r) == p), key=lambda r: r["imagesPerSecond"], default=None)
                for p in precisions}
best_peer, best_ours = best_peer_of.get("fp32"), best_ours_of.get("fp32") or max(ours, key=lambda r: r["imagesPerSecond"])
single = next((r for r in ours if r["ranks"] == 1 and precision(r) == "fp32"), None)
flops = host["flopsPerImage"]
tag = re.sub(r"[^a-z0-9]+", "-", f"{host['cpu']} {host['isa']}".lower()).strip("-")
title = f"{host['cpu']}, {host['isa']}, {os.cpu_count()} cores"

# A run's images/s over the best peer's of its precision. The Markdown formats this and the raw
# rates, not the CSV's rounded figures: rounding 1.47499 to 1.475 and then to two places printed
# 1.48× beside the summary's 1.47×, and 3843.46 images/s became 3843.5 and then "3,844".
ratio_of = lambda r: r["imagesPerSecond"] / best_peer_of[precision(r)]["imagesPerSecond"]  # noqa: E731

table = []
for r in runs:
    rate = r["imagesPerSecond"]
    table.append({
        "run": r["name"],
        "version": r.get("version", "vae-dist"),
        "images_per_sec": round(rate, 1),
        "precision": precision(r),
        "ratio_to_best_peer": round(ratio_of(r), 3) if best_peer_of[precision(r)] else "",
        "gflops": round(rate * flops / 1e9, 1),
        "fraction_of_fma_peak": round(rate * flops / 1e9 / host["fma"], 3),
        "passes": " / ".join(f"{p:.0f}" for p in r["passes"]),
        "rounds": len(r["passes"]),
        "min": round(min(r["passes"]), 1),
        "max": round(max(r["passes"]), 1),
    })

os.makedirs(args.out, exist_ok=True)
with open(os.path.join(args.out, "peers.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, fieldnames=list(table[0]) + ["cpu", "isa"])
    writer.writeheader()
    for row in table:
        writer.writerow({**row, "cpu": host["cpu"], "isa": host["isa"]})

lines = [
    f"| run | images/s (median) | × best peer{' (same precision)' if len(precisions) > 1 else ''} | GFLOP/s | of FMA peak |",
    "| --- | --- | --- | --- | --- |",
]
for r, row in zip(runs, table):
    ratio = f"{ratio_of(r):.2f}×" if row["ratio_to_best_peer"] != "" else "–"
    spread = (f" ({min(r['passes']):,.0f}–{max(r['passes']):,.0f} over {row['rounds']} rounds: {row['passes']})"
              if row["rounds"] > 1 else "")
    rate, gflops = r["imagesPerSecond"], r["imagesPerSecond"] * flops / 1e9
    lines.append(f"| {row['run']} ({row['version']}) | {rate:,.0f}{spread} | {ratio} | {gflops:.1f} | {100 * gflops / host['fma']:.0f}% |")
summary = [
    f"Peaks on all {os.cpu_count()} cores: calibrated {host['isa']} loop {host['fma']:.1f} GFLOP/s, OpenBLAS ({host['blas']}) "
    f"sgemm 1024³ {host['gemm']:.1f} GFLOP/s; {flops / 1e6:.0f} MFLOP per image.",
]
for p in precisions:
    peer, mine = best_peer_of[p], best_ours_of[p]
    if peer and mine:
        summary.append(f"Best {p} peer: {peer['name']}, {peer['imagesPerSecond']:,.0f} images/s. Best vae-dist {p} layout: "
                       f"{mine['name']}, {mine['imagesPerSecond'] / peer['imagesPerSecond']:.2f}× it.")
if single and single is not best_ours:
    summary.append(f"The single process runs at {single['imagesPerSecond'] / best_ours['imagesPerSecond']:.1%} of the best layout.")
elif single:
    summary.append("The single process is the best layout.")
markdown = "\n".join(lines) + "\n\n" + " ".join(summary) + "\n"
with open(os.path.join(args.out, "peers.md"), "w") as f:
    f.write(f"### {title}\n\n" + markdown)
print(f"peer benchmark on {title}\n" + markdown)

import matplotlib  # noqa: E402
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(8, 0.5 * len(table) + 1.2), dpi=110)
names = [r["run"] for r in table][::-1]
values = [r["images_per_sec"] for r in table][::-1]
colors = ["#4C72B0" if r["kind"] == "vae-dist" else "#999999" for r in runs][::-1]
ax.barh(names, values, color=colors)
for y, v in enumerate(values):
    ax.text(v, y, f" {v:,.0f}", va="center", fontsize=8)
if best_peer:
    ax.axvline(2 * best_peer["imagesPerSecond"], color="#C44E52", linestyle="--", linewidth=1)
    ax.text(2 * best_peer["imagesPerSecond"], -0.45, "2× best peer ", color="#C44E52", fontsize=8, ha="right")
ax.set_xlabel("training images/s (steady epochs)")
ax.set_title(title, fontsize=9)
ax.set_xlim(0, max(values + [2 * best_peer["imagesPerSecond"] if best_peer else 0]) * 1.15)
fig.tight_layout()
chart = os.path.join(args.out, "peers.png")
fig.savefig(chart)

if args.docs:
    image = f"images/peers-{tag}.png"
    os.makedirs(os.path.join(args.docs, "images"), exist_ok=True)
    fig.savefig(os.path.join(args.docs, image))
    path = os.path.join(args.docs, "performance.md")
    text = open(path).read() if os.path.exists(path) else "# Performance\n"
    start, end = f"<!-- peers: {tag} -->", f"<!-- /peers: {tag} -->"
    section = (f"{start}\n### {title}\n\nMeasured {datetime.date.today().isoformat()} with "
               f"`launch/peer-benchmark.sh --docs`.\n\n{markdown}\n![peers on {host['cpu']}]({image})\n{end}")
    if start in text:
        text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: section, text, flags=re.S)
    else:
        marker = "<!-- peers -->"
        text = text.replace(marker, marker + "\n\n" + section) if marker in text else text.rstrip() + "\n\n" + section + "\n"
    with open(path, "w") as f:
        f.write(text)
    print(f"peer-benchmark: wrote the table into {path} and the chart into {os.path.join(args.docs, image)}")
