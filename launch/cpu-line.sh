#!/usr/bin/env bash
# Prints this CPU as the launch scripts name it beside their figures: its model name, family and
# model, and the vector flags that decide the kernels, e.g. "AMD EPYC (family 25, model 17), avx2 fma".
#   launch/cpu-line.sh
set -euo pipefail
python3 - <<'PY'
import re
cpu = open("/proc/cpuinfo").read()
field = lambda name: re.search(rf"^{name}\s*: (.*)$", cpu, re.M).group(1)
isa = [f for f in ("avx2", "fma", "avx512f", "avx512_bf16") if f in field("flags").split()]
print(f"{field('model name')} (family {field('cpu family')}, model {field('model')}), {' '.join(isa)}")
PY
