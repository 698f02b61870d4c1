#!/usr/bin/env python3
"""Reads a TensorBoard run directory with TensorBoard's own EventAccumulator and prints JSON.

    python3 Tests/tensorboard/read_events.py LOGDIR

prints to stdout

    {"scalars": {tag: [[step, value], ...]},
     "images":  {tag: [[step, width, height, base64 PNG], ...]},
     "texts":   {tag: [[step, text], ...]}}

in the order TensorBoard keeps them. Scalar values are TensorBoard's (32-bit floats widened to
Python floats); non-finite ones are printed as the strings "nan", "inf" and "-inf", so that the
output stays strict JSON. Texts are the text plugin's summaries: DT_STRING tensors whose summary
metadata names plugin "text"; a scalar text is a string, a text array a list of strings.

LOGDIR is one run: the directory holding the events.out.tfevents.* files (EventAccumulator does
not descend into subdirectories). Before loading, every record of every event file is checked
(length, both masked CRC-32Cs, using TensorBoard's own masked_crc32c), because EventAccumulator
silently stops at a damaged or truncated record. Exits 1 with a message on stderr on any error,
2 on bad usage.

Needs: python3 -m pip install tensorboard
"""

import base64
import json
import math
import os
import struct
import sys


def fail(message, code=1):
    print(f"read_events.py: {message}", file=sys.stderr)
    sys.exit(code)


def check_framing(path, masked_crc32c):
    """Returns the record count of a TFRecord file; raises ValueError naming the fault."""
    with open(path, "rb") as f:
        data = f.read()
    at, count = 0, 0
    while at < len(data):
        if len(data) - at < 12:
            raise ValueError(f"{path}: truncated record header at byte {at}")
        header = data[at : at + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[at + 8 : at + 12])
        if masked_crc32c(header) != length_crc:
            raise ValueError(f"{path}: record {count} at byte {at}: length CRC mismatch")
        if len(data) - at - 12 < length + 4:
            raise ValueError(f"{path}: record {count} at byte {at}: truncated ({length} bytes announced)")
        body = data[at + 12 : at + 12 + length]
        (body_crc,) = struct.unpack("<I", data[at + 12 + length : at + 16 + length])
        if masked_crc32c(body) != body_crc:
            raise ValueError(f"{path}: record {count} at byte {at}: data CRC mismatch")
        at += 16 + length
        count += 1
    if count == 0:
        raise ValueError(f"{path}: empty event file")
    return count


def json_float(x):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print(__doc__, file=sys.stderr)
        return 2
    logdir = argv[1]
    if not os.path.isdir(logdir):
        fail(f"{logdir}: not a directory")
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
        from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c
    except ImportError as e:
        fail(f"cannot import TensorBoard ({e}); install it with: python3 -m pip install tensorboard")

    files = sorted(n for n in os.listdir(logdir) if "tfevents" in n)
    if not files:
        fail(f"{logdir}: no events.out.tfevents.* files in this directory")
    for name in files:
        check_framing(os.path.join(logdir, name), masked_crc32c)

    # 0 for every kind: keep every event, not a reservoir sample.
    guidance = {"compressedHistograms": 0, "images": 0, "audio": 0, "scalars": 0, "histograms": 0, "tensors": 0}
    acc = EventAccumulator(logdir, size_guidance=guidance)
    acc.Reload()
    tags = acc.Tags()

    out = {"scalars": {}, "images": {}, "texts": {}}
    for tag in tags["scalars"]:
        out["scalars"][tag] = [[e.step, json_float(e.value)] for e in acc.Scalars(tag)]
    for tag in tags["images"]:
        out["images"][tag] = [
            [e.step, e.width, e.height, base64.b64encode(e.encoded_image_string).decode("ascii")]
            for e in acc.Images(tag)
        ]
    # Text summaries land among the tensors (Tags()["tensors"]), marked by their metadata.
    for tag in tags["tensors"]:
        metadata = acc.summary_metadata.get(tag)
        if metadata is None or metadata.plugin_data.plugin_name != "text":
            continue
        rows = []
        for e in acc.Tensors(tag):
            proto = e.tensor_proto
            if proto.dtype != 7:  # DT_STRING
                raise ValueError(f"text summary {tag!r} at step {e.step}: dtype {proto.dtype}, not DT_STRING")
            strings = [s.decode("utf-8") for s in proto.string_val]
            scalar = len(proto.tensor_shape.dim) == 0
            if scalar and len(strings) != 1:
                raise ValueError(f"text summary {tag!r} at step {e.step}: scalar with {len(strings)} strings")
            rows.append([e.step, strings[0] if scalar else strings])
        out["texts"][tag] = rows

    json.dump(out, sys.stdout, allow_nan=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ValueError, UnicodeDecodeError, KeyError) as e:
        fail(str(e))
