"""The same VAE in Keras (TensorFlow backend): a peer of launch/peer-benchmark.sh.

The model and loss are the Keras-book VAE that vae-dist implements (docs/model.md): Conv 32 s2 →
Conv 64 s2 → Dense 16 → (z_mean, z_log_var); Dense 7·7·64 → ConvT 64 s2 → ConvT 32 s2 → ConvT 1 +
sigmoid; summed binary cross-entropy + KL, Adam, batch 128, on the 60,000 real training images.
Input is a tf.data pipeline (shuffle, batch, prefetch 2, autotune off): Keras's fit(numpy) path
stalls 6–8 s at the start of many epochs waiting for its autotune thread, which would flatter
vae-dist. Prints steady-state images/s (the mean of epochs after the first, which includes tracing)
as text and one JSON line. oneDNN is TensorFlow's default unless TF_ENABLE_ONEDNN_OPTS is set.
"""
import argparse, gzip, json, os, sys, time

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
parser.add_argument("--epochs", type=int, default=3, help="epochs to run; the first is warm-up")
parser.add_argument("--threads", type=int, help="TensorFlow intra-op threads (default: TensorFlow's own choice)")
parser.add_argument("--batch-size", type=int, default=128)
args = parser.parse_args()
if args.epochs < 2:
    sys.exit("keras_baseline.py: --epochs must be at least 2 (the first is warm-up)")

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import tensorflow as tf
import keras
from keras import layers

if args.threads:
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)


def load_images(directory):
    for name in ("train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                raw = f.read()
            count = int.from_bytes(raw[4:8], "big")
            return np.frombuffer(raw, np.uint8, offset=16).reshape(count, 28, 28, 1).astype("float32") / 255
    sys.exit(f"keras_baseline.py: no train-images-idx3-ubyte[.gz] in {directory}")


latent_dim = 2
encoder_inputs = keras.Input(shape=(28, 28, 1))
x = layers.Conv2D(32, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
x = layers.Conv2D(64, 3, activation="relu", strides=2, padding="same")(x)
x = layers.Flatten()(x)
x = layers.Dense(16, activation="relu")(x)
encoder = keras.Model(encoder_inputs, [layers.Dense(latent_dim)(x), layers.Dense(latent_dim)(x)])

latent_inputs = keras.Input(shape=(latent_dim,))
x = layers.Dense(7 * 7 * 64, activation="relu")(latent_inputs)
x = layers.Reshape((7, 7, 64))(x)
x = layers.Conv2DTranspose(64, 3, activation="relu", strides=2, padding="same")(x)
x = layers.Conv2DTranspose(32, 3, activation="relu", strides=2, padding="same")(x)
decoder = keras.Model(latent_inputs, layers.Conv2DTranspose(1, 3, activation="sigmoid", padding="same")(x))


class VAE(keras.Model):
    def __init__(self, encoder, decoder):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def train_step(self, data):
        with tf.GradientTape() as tape:
            z_mean, z_log_var = self.encoder(data)
            epsilon = tf.random.normal(shape=tf.shape(z_mean))
            z = z_mean + tf.exp(0.5 * z_log_var) * epsilon
            reconstruction = self.decoder(z)
            reconstruction_loss = tf.reduce_mean(
                tf.reduce_sum(keras.losses.binary_crossentropy(data, reconstruction), axis=(1, 2)))
            kl = -0.5 * (1 + z_log_var - tf.square(z_mean) - tf.exp(z_log_var))
            total_loss = reconstruction_loss + tf.reduce_mean(tf.reduce_sum(kl, axis=1))
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        return {"loss": total_loss}


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds.append(time.perf_counter() - self.start)


images = load_images(args.data)
vae = VAE(encoder, decoder)
vae.compile(optimizer=keras.optimizers.Adam())
seconds = []
options = tf.data.Options()
options.autotune.enabled = False
dataset = (tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), reshuffle_each_iteration=True)
           .batch(args.batch_size).prefetch(2).with_options(options))
vae.fit(dataset, epochs=args.epochs, verbose=0, callbacks=[EpochTimer()])
steady = seconds[1:]
rates = [len(images) / s for s in steady]
mean = sum(rates) / len(rates)
onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")
print(f"Keras {keras.__version__} / TensorFlow {tf.__version__} (tf.data, oneDNN {onednn}), {args.threads or os.cpu_count()} threads, "
      f"batch {args.batch_size}: {mean:,.0f} images/s (epochs 2..{args.epochs}: " + ", ".join(f"{s:.2f} s" for s in steady) + ")")
print(json.dumps({"framework": "keras", "keras": keras.__version__, "tensorflow": tf.__version__, "onednn": onednn,
                  "version": f"Keras {keras.__version__} / TF {tf.__version__}",
                  "threads": args.threads or os.cpu_count(), "batchSize": args.batch_size, "imagesPerSecond": mean,
                  "epochSeconds": seconds}))
