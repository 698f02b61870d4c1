"""The same VAE in Keras (TensorFlow backend): a peer of launch/peer-benchmark.sh.

The model and loss are keras_model.py's (the Keras-book VAE that vae-dist implements), Adam, batch
128, on the 60,000 real training images.
Input is a tf.data pipeline (shuffle, batch, prefetch 2, autotune off): Keras's fit(numpy) path
stalls 6–8 s at the start of many epochs waiting for its autotune thread, which would flatter
vae-dist. --precision bf16 sets Keras's "mixed_bfloat16" policy (bf16 computation, float32
variables). Prints steady-state images/s (the mean of epochs after the first, which includes tracing)
as text and one JSON line. oneDNN is TensorFlow's default unless TF_ENABLE_ONEDNN_OPTS is set.
"""
import json
import os
import time

from timing import arguments, steady_images_per_second

args = arguments(__doc__, "keras_vae.py", "TensorFlow intra-op threads (default: TensorFlow's own choice)")
from keras_model import VAE, build, load_images  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402

if args.threads:
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        seconds.append(time.perf_counter() - self.start)


if args.precision == "bf16":
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
images = load_images(args.data)
encoder, decoder, _ = build()
vae = VAE(encoder, decoder)
vae.compile(optimizer=keras.optimizers.Adam())
seconds = []
options = tf.data.Options()
options.autotune.enabled = False
dataset = (tf.data.Dataset.from_tensor_slices(images).shuffle(len(images), reshuffle_each_iteration=True)
           .batch(args.batch_size).prefetch(2).with_options(options))
vae.fit(dataset, epochs=args.epochs, verbose=0, callbacks=[EpochTimer()])
steady = seconds[1:]
mean = steady_images_per_second(seconds, len(images))
onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default")
print(f"Keras {keras.__version__} / TensorFlow {tf.__version__} (tf.data, oneDNN {onednn}, {args.precision}), {args.threads or os.cpu_count()} threads, "
      f"batch {args.batch_size}: {mean:,.0f} images/s (epochs 2..{args.epochs}: " + ", ".join(f"{s:.2f} s" for s in steady) + ")")
print(json.dumps({"framework": "keras", "keras": keras.__version__, "tensorflow": tf.__version__, "onednn": onednn, "precision": args.precision,
                  "version": f"Keras {keras.__version__} / TF {tf.__version__}",
                  "threads": args.threads or os.cpu_count(), "batchSize": args.batch_size, "imagesPerSecond": mean,
                  "epochSeconds": seconds}))
