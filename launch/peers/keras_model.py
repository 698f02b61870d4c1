"""The Keras-book VAE (TensorFlow backend) the Keras peers share: keras_vae.py times it,
keras_quality.py trains it beside vae-dist for the quality benchmark.

The model and loss are those vae-dist implements (docs/model.md): Conv 32 s2 → Conv 64 s2 → Dense 16
→ (z_mean, z_log_var); Dense 7·7·64 → ConvT 64 s2 → ConvT 32 s2 → ConvT 1 + sigmoid; summed binary
cross-entropy + KL, averaged over the batch; Keras's defaults for the rest (Glorot-uniform weights,
zero biases, Adam with lr 1e-3).
"""
import gzip
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402


def load_images(directory, split="train"):
    """The split's images as float32 [n, 28, 28, 1] in [0, 1]."""
    stem = "train-images-idx3-ubyte" if split == "train" else "t10k-images-idx3-ubyte"
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                raw = f.read()
            count = int.from_bytes(raw[4:8], "big")
            return np.frombuffer(raw, np.uint8, offset=16).reshape(count, 28, 28, 1).astype("float32") / 255
    sys.exit(f"keras_model.py: no {stem}[.gz] in {directory}")


def build(latent_dim=2):
    """(encoder, decoder, hidden): hidden is the encoder's Dense(16) ReLU layer, whose dead units the
    quality benchmark counts."""
    encoder_inputs = keras.Input(shape=(28, 28, 1))
    x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Flatten()(x)
    hidden = layers.Dense(16, activation="relu")
    x = hidden(x)
    encoder = keras.Model(encoder_inputs, [layers.Dense(latent_dim)(x), layers.Dense(latent_dim)(x)])

    latent_inputs = keras.Input(shape=(latent_dim,))
    x = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
    x = layers.Reshape((7, 7, 64))(x)
    x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
    x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
    decoder = keras.Model(latent_inputs, layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x))
    return encoder, decoder, hidden


def losses(encoder, decoder, data):
    """Per image: (summed binary cross-entropy, KL), with z sampled as in training."""
    # Under a mixed policy the layers compute in bf16; the loss is summed in float32.
    z_mean, z_log_var = (tf.cast(t, "float32") for t in encoder(data))
    epsilon = tf.random.normal(shape=tf.shape(z_mean))
    z = z_mean + tf.exp(0.5 * z_log_var) * epsilon
    reconstruction = tf.cast(decoder(z), "float32")
    recon = tf.reduce_sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2))
    kl = tf.reduce_sum(-0.5 * (1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var)), axis=1)
    return recon, kl


class VAE(keras.Model):
    """The Keras book's train_step: the loss is the batch mean of reconstruction + KL; the tracker
    reports its mean over the epoch's batches."""

    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.loss_tracker = keras.metrics.Mean(name="loss")

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            recon, kl = losses(self.encoder, self.decoder, data)
            total_loss = tf.reduce_mean(recon) + tf.reduce_mean(kl)
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.loss_tracker.update_state(total_loss)
        return {"loss": self.loss_tracker.result()}
