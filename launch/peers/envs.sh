# The peers' Python environments, sourced by launch/peer-benchmark.sh and launch/quality-benchmark.sh.
# Each framework gets its own venv under $VAE_DIST_PEER_ENVS (default ~/.cache/vae-dist), installed
# from PyPI once; later calls only check that the imports work.
envs="${VAE_DIST_PEER_ENVS:-$HOME/.cache/vae-dist}"
mkdir -p "$envs"
# launch/, found from this file (sourced: $0 is the caller), for install-packages.sh.
peers_launch="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

make_venv() {  # make_venv DIR: a venv counts as made once it has its pip; a creation that failed
  # part-way leaves bin/python without bin/pip, and is made again from scratch.
  local venv="$1"
  [[ -x "$venv/bin/pip" ]] && return 0
  "$peers_launch/install-packages.sh" peers python3-venv || return 1
  python3 -m venv --clear "$venv"
}

ensure_venv() {  # ensure_venv DIR IMPORT PACKAGE...
  local venv="$1" import="$2"; shift 2
  "$venv/bin/python" -c "import $import" 2>/dev/null && return 0
  echo "peers: installing $* into $venv (once)" >&2
  make_venv "$venv" || return 1
  "$venv/bin/pip" install --quiet "$@"
}

ensure_keras() {  # TensorFlow's CPU wheel where there is one, else the full one (which runs on CPUs)
  ensure_venv "$envs/keras-venv" "tensorflow, keras" tensorflow-cpu || ensure_venv "$envs/keras-venv" "tensorflow, keras" tensorflow
}

ensure_torch() {
  # PyTorch's CPU-only wheels live on download.pytorch.org; where only PyPI is reachable, PyPI's
  # wheel (which also runs on CPUs) is taken instead.
  "$envs/torch-venv/bin/python" -c "import torch" 2>/dev/null || {
    make_venv "$envs/torch-venv" || return 1
    timeout 120 "$envs/torch-venv/bin/pip" install --quiet --index-url https://download.pytorch.org/whl/cpu torch 2>/dev/null \
      || ensure_venv "$envs/torch-venv" torch torch
  }
}
