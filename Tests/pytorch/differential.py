#!/usr/bin/env python3
"""Replays a vae-dist training trace in PyTorch, independently, and prints how far the two differ.

    VAE_DIST_TRACE_DIR=T vae-dist train --max-steps N ...      # writes the trace (StepTrace.swift)
    python3 Tests/pytorch/differential.py T [--data DIR] [--dtype float32|float64] [--json]

The trace holds vae-dist's initial parameters, the exact images and the exact noise ε of every step,
the step's loss, and its state (parameters and both Adam moments) after some steps K. This script
owns the rest: the model (check_model.py's module, PyTorch's own convolutions), the loss (summed
BCE-with-logits + β·KL, mean over the batch) and Adam in Keras's form, written out here.

Two comparisons:
- one step: from vae-dist's state after step K−1, one PyTorch step on batch K, against vae-dist's
  state after K (no drift can build up: this checks the gradient, the reduction and Adam);
- free run: from vae-dist's initial state, PyTorch alone trains through every traced step; the
  parameters after each stored K and every step's loss are compared.

Adam's first step moves each parameter by about lr·sign(g), so a gradient within rounding of zero
can flip a parameter by 2·lr; the figures therefore give, besides the maximum difference, how many
parameters differ by more than lr/100 ("flipped").
"""
import argparse
import gzip
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_model import VAE  # noqa: E402


def load_trace(directory):
    with open(f"{directory}/layout.json") as f:
        layout = json.load(f)
    with open(f"{directory}/steps.jsonl") as f:
        steps = [json.loads(line) for line in f if line.strip()]
    # The rate each step applied (a learning-rate schedule makes it vary; older traces: the constant).
    layout["rates"] = [s.get("lr", layout["learningRate"]) for s in steps]
    indices = np.fromfile(f"{directory}/batches.i32", dtype="<i4")
    noise = np.fromfile(f"{directory}/noise.f32", dtype="<f4").reshape(-1, layout["latentDim"])
    batches, position = [], 0
    for s in steps:
        n = s["images"]
        batches.append((indices[position:position + n], noise[position:position + n]))
        position += n
    if position != len(indices):
        raise SystemExit(f"{directory}: batches.i32 holds {len(indices)} indices, steps.jsonl accounts for {position}")
    states = {}
    for name in os.listdir(directory):
        if name.startswith("state-") and name.endswith(".f32"):
            flat = np.fromfile(f"{directory}/{name}", dtype="<f4").reshape(3, layout["totalCount"])
            states[int(name[6:-4])] = flat
    return layout, steps, batches, states


def training_images(directory):
    with gzip.open(f"{directory}/train-images-idx3-ubyte.gz") as f:
        data = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return data.reshape(-1, 1, 28, 28)


class Replay:
    def __init__(self, layout, images, dtype):
        self.layout, self.images, self.dtype = layout, images, dtype
        self.model = VAE(latent_dim=layout["latentDim"]).to(dtype)
        self.named = dict(self.model.named_parameters())
        names = [t["name"] for t in layout["tensors"]]
        if sorted(names) != sorted(self.named):
            raise SystemExit("the trace's tensors are not the PyTorch module's: " + ", ".join(sorted(set(names) ^ set(self.named))))
        self.m = {k: torch.zeros_like(v) for k, v in self.named.items()}
        self.v = {k: torch.zeros_like(v) for k, v in self.named.items()}

    def set_state(self, flat):  # flat: [3, total] = parameters, m, v
        with torch.no_grad():
            for t in self.layout["tensors"]:
                a, b = t["offset"], t["offset"] + math.prod(t["shape"])
                for target, row in ((self.named[t["name"]], 0), (self.m[t["name"]], 1), (self.v[t["name"]], 2)):
                    target.copy_(torch.from_numpy(flat[row, a:b].reshape(t["shape"]).astype(np.float64)).to(self.dtype))

    def parameters_flat(self):
        out = np.zeros(self.layout["totalCount"], dtype=np.float64)
        for t in self.layout["tensors"]:
            a = t["offset"]
            out[a:a + math.prod(t["shape"])] = self.named[t["name"]].detach().double().numpy().ravel()
        return out

    def step(self, t, indices, epsilon):
        """Step t (1-based): returns the batch's summed reconstruction and KL before the update."""
        x = torch.from_numpy(self.images[indices].astype(np.float32) / 255).to(self.dtype)
        eps = torch.from_numpy(epsilon).to(self.dtype)
        mean, log_var = self.model.encoder(x)
        z = mean + torch.exp(0.5 * log_var) * eps
        logits = self.model.decoder(z)
        recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
        kl = -0.5 * (1 + log_var - mean**2 - log_var.exp()).sum()
        loss = (recon + self.layout["beta"] * kl) / x.shape[0]
        self.model.zero_grad()
        loss.backward()
        lr = self.layout["rates"][t - 1]
        b1, b2, e = (self.layout[k] for k in ("beta1", "beta2", "epsilon"))
        alpha = lr * math.sqrt(1 - b2**t) / (1 - b1**t)  # Keras: bias correction folded into the step
        with torch.no_grad():
            for name, p in self.named.items():
                g = p.grad
                self.m[name].mul_(b1).add_((1 - b1) * g)
                self.v[name].mul_(b2).add_((1 - b2) * g * g)
                p.sub_(alpha * self.m[name] / (self.v[name].sqrt() + e))
        return recon.item(), kl.item()


def compare(ours, theirs, lr):
    diff = np.abs(ours - theirs.astype(np.float64))
    return {"max": float(diff.max()), "rms": float(np.sqrt((diff**2).mean())), "flipped": int((diff > lr / 100).sum())}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trace")
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()
    torch.set_num_threads(max(1, int(os.environ.get("DIFFERENTIAL_THREADS", "1"))))
    dtype = getattr(torch, args.dtype)
    layout, steps, batches, states = load_trace(args.trace)
    images = training_images(args.data)
    lr = layout["learningRate"]
    if 0 not in states:
        raise SystemExit(f"{args.trace}: no state-0.f32 (the initial state); trace a fresh run")
    report = {"dtype": args.dtype, "steps": len(steps), "parameters": layout["totalCount"], "oneStep": [], "freeRun": []}

    # One step from vae-dist's own state: the step's arithmetic alone.
    for k in sorted(states):
        if k == 0 or k - 1 not in states or k > len(steps):
            continue
        replay = Replay(layout, images, dtype)
        replay.set_state(states[k - 1])
        recon, kl = replay.step(k, *batches[k - 1])
        ours = steps[k - 1]
        report["oneStep"].append({
            "step": k, **compare(replay.parameters_flat(), states[k][0], lr),
            "lossRelative": abs((recon + kl) - (ours["reconstruction"] + ours["kl"])) / abs(ours["reconstruction"] + ours["kl"]),
        })

    # Free run from the initial state: PyTorch's own trajectory.
    replay = Replay(layout, images, dtype)
    replay.set_state(states[0])
    worst_loss, sums = 0.0, [0.0, 0.0, 0]
    for t, (indices, epsilon) in enumerate(batches, start=1):
        recon, kl = replay.step(t, indices, epsilon)
        ours = steps[t - 1]
        theirs_mean = (recon + kl) / len(indices)
        ours_mean = (ours["reconstruction"] + ours["kl"]) / ours["images"]
        worst_loss = max(worst_loss, abs(theirs_mean - ours_mean))
        sums[0] += recon + kl
        sums[1] += ours["reconstruction"] + ours["kl"]
        sums[2] += len(indices)
        if t in states:
            report["freeRun"].append({
                "step": t, **compare(replay.parameters_flat(), states[t][0], lr),
                "lossPyTorch": theirs_mean, "lossVaeDist": ours_mean, "maxLossDifferenceSoFar": worst_loss,
            })

    report["meanLossPyTorch"], report["meanLossVaeDist"] = sums[0] / sums[2], sums[1] / sums[2]
    noise = np.concatenate([b[1] for b in batches]).astype(np.float64)
    report["noiseMoments"] = {"count": int(noise.size), "mean": float(noise.mean()), "variance": float(noise.var())}
    if args.json:
        print(json.dumps(report))
        return
    print(f"differential test: vae-dist trace {args.trace} against PyTorch {torch.__version__} in {args.dtype}, "
          f"{len(steps)} steps, {layout['totalCount']:,} parameters (lr {lr:g}; 'flipped' = |Δp| > lr/100)")
    for row in report["oneStep"]:
        print(f"  one step {row['step']:>5} from vae-dist's state: max |Δp| {row['max']:.3e}  rms {row['rms']:.3e}  "
              f"flipped {row['flipped']}  loss rel. diff {row['lossRelative']:.2e}")
    for row in report["freeRun"]:
        print(f"  free run, after {row['step']:>5}: max |Δp| {row['max']:.3e}  rms {row['rms']:.3e}  flipped {row['flipped']}  "
              f"loss {row['lossVaeDist']:.4f} vs {row['lossPyTorch']:.4f}  (max per-step loss diff so far {row['maxLossDifferenceSoFar']:.2e})")
    print(f"  mean loss over the {len(steps)} steps: vae-dist {report['meanLossVaeDist']:.4f}, PyTorch {report['meanLossPyTorch']:.4f}")
    m = report["noiseMoments"]
    print(f"  the {m['count']:,} draws of ε: mean {m['mean']:+.4f}, variance {m['variance']:.4f} (N(0, 1): 0, 1)")


if __name__ == "__main__":
    main()
