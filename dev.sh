#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (as root) or a developer's checkout:
#   bash dev.sh setup   apt packages, .venv, pinned Python dependencies (quick when already done)
#   bash dev.sh demo    setup, then build the demo collection and run every stage on ./archive
#   bash dev.sh test    setup, then the whole test suite
#   bash dev.sh bench   setup, then the benchmarks under bench/
set -euo pipefail
cd "$(dirname "$0")"

# festival installs without a voice under --no-install-recommends; the demo and the benchmarks speak with kal_diphone
APT_PACKAGES=(python3 python3-venv espeak-ng festival festvox-kallpc16k ffmpeg sox alsa-utils make)
VENV=.venv
PY=${PYTHON:-python3}

apt_setup() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing apt packages: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

venv_setup() {
  local stamp=$VENV/.installed
  local want
  want=$(cat requirements.txt requirements-nodeps.txt constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/heirloom" ]; then
    return 0
  fi
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >&2
  "$VENV/bin/python" -m pip install -q -r requirements.txt -c constraints.txt >&2
  "$VENV/bin/python" -m pip install -q --no-deps -r requirements-nodeps.txt >&2
  "$VENV/bin/python" -m pip install -q --no-deps -e . >&2
  echo "$want" > "$stamp"
}

setup() {
  apt_setup
  venv_setup
}

cmd=${1:-}
shift || true
case "$cmd" in
  setup) setup ;;
  demo) setup; exec "$VENV/bin/heirloom" demo "$@" ;;
  test) setup; exec "$VENV/bin/python" -m pytest "$@" ;;
  bench) setup; for b in bench/[!_]*.py; do "$VENV/bin/python" "$b" "$@"; done ;;
  *) echo "usage: bash dev.sh setup|demo|test|bench [args]" >&2; exit 2 ;;
esac
