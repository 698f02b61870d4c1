"""Trains keras_model.py's VAE for the quality benchmark (launch/quality-benchmark.sh --peers).

    keras_quality.py --seed S [--epochs 30] [--data DIR] [--out FILE.jsonl]

The settings are vae-dist's defaults and the Keras book's: batch 128 over the 60,000 training images
reshuffled every epoch, Adam lr 1e-3, latent 2. `keras.utils.set_random_seed(S)` seeds the weights,
the shuffle and ε. After every epoch one JSON line: the mean training loss over the epoch's batches;
the test loss over the 10,000 test images with z sampled as in training (vae-dist's test_loss); and
how many of the encoder's 16 hidden ReLU units are dead (zero for every test image).
"""
import argparse
import json
import os
import sys
import time

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seed", type=int, required=True)
parser.add_argument("--epochs", type=int, default=30)
parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
parser.add_argument("--out", help="also append the JSON lines to this file")
args = parser.parse_args()
if args.epochs < 1:
    sys.exit("keras_quality.py: --epochs must be at least 1")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from keras_model import VAE, build, load_images, losses  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

keras.utils.set_random_seed(args.seed)
train, test = load_images(args.data, "train"), load_images(args.data, "test")
encoder, decoder, hidden = build()
probe = keras.Model(encoder.inputs, hidden.output)
vae = VAE(encoder, decoder)
vae.compile(optimizer=keras.optimizers.Adam())
test_batches = tf.data.Dataset.from_tensor_slices(test).batch(500)
test_losses = tf.function(lambda x: losses(encoder, decoder, x))


class Report(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self.start
        recon = kl = 0.0
        for x in test_batches:
            r, k = test_losses(x)
            recon, kl = recon + float(tf.reduce_sum(r)), kl + float(tf.reduce_sum(k))
        active = probe.predict(test, batch_size=1000, verbose=0) > 0
        line = json.dumps({"framework": "keras", "version": f"Keras {keras.__version__} / TF {tf.__version__}",
                           "seed": args.seed, "epoch": epoch + 1, "train_loss": float(logs["loss"]),
                           "test_loss": (recon + kl) / len(test), "test_recon": recon / len(test),
                           "test_kl": kl / len(test), "dead_hidden_units": int((~active.any(axis=0)).sum()),
                           "seconds": seconds})
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")


dataset = (tf.data.Dataset.from_tensor_slices(train).shuffle(len(train), seed=args.seed, reshuffle_each_iteration=True)
           .batch(128).prefetch(2))
vae.fit(dataset, epochs=args.epochs, verbose=0, callbacks=[Report()])
