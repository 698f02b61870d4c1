#!/usr/bin/env python3
"""Loads a vae-dist model.safetensors into the PyTorch module its names describe and evaluates it.

    python3 Tests/pytorch/check_model.py MODEL.safetensors [DATA_DIR]

Prints one JSON object: the mean test loss with z = z_mean (reconstruction + KL) and the number of
the encoder's hidden units that are zero for every test image, computed by PyTorch alone, over the
test images of DATA_DIR (default Debian's Fashion-MNIST; its IDX files gzip or plain). In double
precision: about 11 s for the 10,000 images on a Zen 1, so the tests give 500. The end-to-end
tests compare it with `vae-dist evaluate --json` on the same file and data: agreement shows the
names, layouts and semantics (padding, output_padding, flatten order) are PyTorch's.
"""
import gzip
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class Encoder(nn.Module):
    def __init__(self, latent_dim):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.fc = nn.Linear(64 * 7 * 7, 16)
        self.z_mean = nn.Linear(16, latent_dim)
        self.z_log_var = nn.Linear(16, latent_dim)

    def hidden(self, x):  # the 16 ReLU units before the latent means
        h = F.relu(self.conv2(F.relu(self.conv1(x))))
        return F.relu(self.fc(torch.flatten(h, 1)))

    def forward(self, x):
        h = self.hidden(x)
        return self.z_mean(h), self.z_log_var(h)


class Decoder(nn.Module):
    def __init__(self, latent_dim):
        super().__init__()
        self.fc = nn.Linear(latent_dim, 64 * 7 * 7)
        self.deconv1 = nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1)
        self.deconv2 = nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1)
        self.deconv3 = nn.ConvTranspose2d(32, 1, 3, stride=1, padding=1)

    def forward(self, z):  # logits; the image is their sigmoid
        h = F.relu(self.fc(z)).view(-1, 64, 7, 7)
        return self.deconv3(F.relu(self.deconv2(F.relu(self.deconv1(h)))))


class VAE(nn.Module):
    def __init__(self, latent_dim=2):
        super().__init__()
        self.encoder = Encoder(latent_dim)
        self.decoder = Decoder(latent_dim)


def test_images(directory):  # gzip or plain, as vae-dist reads them
    path = f"{directory}/t10k-images-idx3-ubyte"
    with (gzip.open(path + ".gz") if os.path.exists(path + ".gz") else open(path, "rb")) as f:
        data = np.frombuffer(f.read(), dtype=np.uint8, offset=16)
    return torch.from_numpy(data.reshape(-1, 1, 28, 28).astype(np.float32) / 255)


def main():
    from safetensors.torch import load_file  # here, so the module alone needs only PyTorch

    path = sys.argv[1]
    directory = sys.argv[2] if len(sys.argv) > 2 else "/usr/share/datasets/fashion-mnist"
    state = load_file(path)
    model = VAE(latent_dim=state["encoder.z_mean.bias"].shape[0])
    model.load_state_dict(state, strict=True)
    images = test_images(directory).double()
    model.double()
    # In batches of 50: all 10,000 images at once hold gigabytes of double activations and column
    # buffers, and faulting them in took most of the run (37 s a model; now 10 s, the same figures).
    recon, kl, hidden_max = [], [], None
    with torch.no_grad():
        for x in images.split(50):
            hidden = model.encoder.hidden(x)
            mean, log_var = model.encoder.z_mean(hidden), model.encoder.z_log_var(hidden)
            logits = model.decoder(mean)
            recon.append(F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(dim=(1, 2, 3)))
            kl.append(-0.5 * (1 + log_var - mean**2 - log_var.exp()).sum(dim=1))
            batch_max = hidden.amax(dim=0)
            hidden_max = batch_max if hidden_max is None else torch.maximum(hidden_max, batch_max)
    recon, kl = torch.cat(recon), torch.cat(kl)
    print(json.dumps({
        "images": images.shape[0],
        "parameters": sum(p.numel() for p in model.parameters()),
        "test_loss_mean_z": (recon + kl).mean().item(),
        "test_recon_mean_z": recon.mean().item(),
        "test_kl_mean_z": kl.mean().item(),
        "test_dead_hidden_units": int((hidden_max <= 0).sum().item()),
    }))


if __name__ == "__main__":
    main()
