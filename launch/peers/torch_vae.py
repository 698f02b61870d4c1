"""The same VAE in PyTorch: a peer of launch/peer-benchmark.sh.

The model is Tests/pytorch/check_model.py's module (the layers vae-dist's safetensors load into),
the loss summed BCE-with-logits + KL averaged over the batch, Adam (lr 1e-3), batch 128 over the
60,000 real training images, reshuffled each epoch. The images sit in one tensor and each batch is
an index into it (no DataLoader workers: the fastest input path PyTorch has for data this small).
PyTorch runs with its default threads unless --threads is given. --precision bf16 runs the forward
pass and the loss under torch.autocast("cpu", dtype=torch.bfloat16), PyTorch's mixed precision on
CPUs (float32 parameters and optimizer; autocast's own list says which ops run in bf16). Prints steady-state images/s (the
mean of the epochs after the first) as text and one JSON line.
"""
import contextlib
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "Tests", "pytorch"))
from check_model import VAE  # noqa: E402
from timing import arguments, steady_images_per_second  # noqa: E402

args = arguments(__doc__, "torch_vae.py", "torch.set_num_threads (default: PyTorch's own choice)")
if args.threads:
    torch.set_num_threads(args.threads)

path = os.path.join(args.data, "train-images-idx3-ubyte.gz")
if not os.path.exists(path):
    sys.exit(f"torch_vae.py: no {path}")
with gzip.open(path) as f:
    raw = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
images = torch.from_numpy(raw.reshape(-1, 1, 28, 28).astype(np.float32) / 255)

torch.manual_seed(0)
model = VAE(latent_dim=2)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if args.precision == "bf16" else contextlib.nullcontext
seconds = []
for epoch in range(args.epochs):
    start = time.perf_counter()
    order = torch.randperm(len(images))
    for first in range(0, len(images), args.batch_size):
        x = images[order[first:first + args.batch_size]]
        with autocast():
            mean, log_var = model.encoder(x)
            z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
            logits = model.decoder(z)
            recon = F.binary_cross_entropy_with_logits(logits.float(), x, reduction="sum")
            kl = -0.5 * (1 + log_var.float() - mean.float()**2 - log_var.float().exp()).sum()
            loss = (recon + kl) / x.shape[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    seconds.append(time.perf_counter() - start)
steady = seconds[1:]
mean = steady_images_per_second(seconds, len(images))
threads = torch.get_num_threads()
print(f"PyTorch {torch.__version__}, {args.precision}, {threads} threads, batch {args.batch_size}: {mean:,.0f} images/s "
      f"(epochs 2..{args.epochs}: " + ", ".join(f"{s:.2f} s" for s in steady) + ")")
print(json.dumps({"framework": "pytorch", "version": f"PyTorch {torch.__version__}", "threads": threads,
                  "precision": args.precision, "batchSize": args.batch_size, "imagesPerSecond": mean, "epochSeconds": seconds}))
