"""The table of launch/onednn-benchmark.sh: vae-dist's passes (bench --layers --json) beside oneDNN's.

usage: onednn_report.py DIR ROUNDS CORE   (CORE: the processor the runs were pinned to; DIR holds onednn-R.txt and vae-dist-R.json for R = 1 … ROUNDS)
"""
import json
import re
import statistics
import sys

out, rounds, core = sys.argv[1], int(sys.argv[2]), sys.argv[3]
names = {"fwd": "forward", "bwd_data": "backward-data", "bwd_w": "backward-weights"}
onednn, ours, peaks, cpu, isa = {}, {}, [], "", ""
for r in range(1, rounds + 1):
    for line in open(f"{out}/onednn-{r}.txt"):
        m = re.match(r"(conv\w+)\s+(fwd|bwd_data|bwd_w)\s+(\S+)\s+[\d.]+ ms\s+([\d.]+) GFLOP/s", line)
        if m:
            onednn.setdefault((m.group(1), names[m.group(2)]), []).append((float(m.group(4)), m.group(3)))
    run = json.load(open(f"{out}/vae-dist-{r}.json"))
    cpu, isa = run["cpu"], run["kernelInstructionSet"]
    if run.get("fmaPeakGigaflopsPerSecond"):
        peaks.append(run["fmaPeakGigaflopsPerSecond"])
    for layer in run["layers"]:
        name = layer["layer"].split()[0]
        if name.startswith("conv"):
            ours.setdefault((name, layer["pass"]), []).append(layer["gigaflopsPerSecond"])
peak = max(peaks)


def cell(values):
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


print(f"{cpu}, vae-dist kernels {isa}; FMA peak of one core {peak:.1f} GFLOP/s (max of {len(peaks)} runs' samples)")
print(f"{rounds} interleaved rounds, one thread on core {core}; nominal GFLOP/s, median (range)\n")
print("| pass | vae-dist direct | of peak | oneDNN 2.6 | of peak | faster |")
print("| --- | --- | --- | --- | --- | --- |")
for key, values in ours.items():
    theirs = onednn.get(key)
    row = f"| {key[0]} {key[1]} | {cell(values)} | {statistics.median(values) / peak:.0%} |"
    if theirs:
        gf = [g for g, _ in theirs]
        winner = "vae-dist" if statistics.median(values) > statistics.median(gf) else "oneDNN"
        row += f" {cell(gf)} `{theirs[0][1]}` | {statistics.median(gf) / peak:.0%} | {winner} |"
    else:
        row += " – | – | – |"
    print(row)
