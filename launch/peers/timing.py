"""What the speed peers (keras_vae.py, torch_vae.py) share: their command line and the
steady-state rate they report, so both measure the same way."""
import argparse
import sys


def arguments(doc, script, threads_help):
    """--data, --epochs (at least 2: the first is warm-up), --threads, --batch-size, --precision."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--epochs", type=int, default=3, help="epochs to run; the first is warm-up")
    parser.add_argument("--threads", type=int, help=threads_help)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: the framework's own mixed precision (bf16 products, float32 parameters)")
    args = parser.parse_args()
    if args.epochs < 2:
        sys.exit(f"{script}: --epochs must be at least 2 (the first is warm-up)")
    return args


def steady_images_per_second(epoch_seconds, images):
    """The mean images/s of the epochs after the first (which includes tracing and warm-up)."""
    steady = epoch_seconds[1:]
    return sum(images / s for s in steady) / len(steady)
