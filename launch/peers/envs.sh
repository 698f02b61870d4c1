# The peers' Python environments, sourced by launch/peer-benchmark.sh and launch/quality-benchmark.sh.
# Each framework gets its own venv under $VAE_DIST_PEER_ENVS (default ~/.cache/vae-dist), installed
# from PyPI once; later calls only check that the imports work.
envs="${VAE_DIST_PEER_ENVS:-$HOME/.cache/vae-dist}"
mkdir -p "$envs"

ensure_venv() {  # ensure_venv DIR IMPORT PACKAGE...
  local venv="$1" import="$2"; shift 2
  "$venv/bin/python" -c "import $import" 2>/dev/null && return 0
  dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q "install ok installed" || {
    local sudo=""; [[ $(id -u) -ne 0 ]] && sudo="sudo"
    $sudo apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
  }
  echo "peers: installing $* into $venv (once)" >&2
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "$@"
}

ensure_keras() {  # TensorFlow's CPU wheel where there is one, else the full one (which runs on CPUs)
  ensure_venv "$envs/keras-venv" "tensorflow, keras" tensorflow-cpu || ensure_venv "$envs/keras-venv" "tensorflow, keras" tensorflow
}

ensure_torch() {
  # PyTorch's CPU-only wheels live on download.pytorch.org; where only PyPI is reachable, PyPI's
  # wheel (which also runs on CPUs) is taken instead.
  "$envs/torch-venv/bin/python" -c "import torch" 2>/dev/null || {
    [[ -x "$envs/torch-venv/bin/python" ]] || python3 -m venv "$envs/torch-venv"
    timeout 120 "$envs/torch-venv/bin/pip" install --quiet --index-url https://download.pytorch.org/whl/cpu torch 2>/dev/null \
      || ensure_venv "$envs/torch-venv" torch torch
  }
}
