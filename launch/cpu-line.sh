#!/usr/bin/env bash
# Prints this CPU as the launch scripts name it beside their figures: its model name, family and
# model, and the vector flags that decide the kernels, e.g. "AMD EPYC (family 25, model 17), avx2 fma".
# (awk, not python3: the scripts call this before or without installing python3.)
#   launch/cpu-line.sh
set -euo pipefail
awk '
  {
    key = $0; sub(/[ \t]*:.*/, "", key)     # "model name\t: AMD EPYC: x" → "model name", "AMD EPYC: x"
    value = $0; sub(/^[^:]*: ?/, "", value)
  }
  key == "model name" && name == "" { name = value }
  key == "cpu family" && family == "" { family = value }
  key == "model" && model == "" { model = value }
  key == "flags" && flags == "" { flags = " " value " " }
  END {
    n = split("avx2 fma avx512f avx512_bf16", wanted, " ")
    for (i = 1; i <= n; i++) if (index(flags, " " wanted[i] " ")) isa = isa (isa == "" ? "" : " ") wanted[i]
    printf "%s (family %s, model %s), %s\n", name, family, model, isa
  }' /proc/cpuinfo
