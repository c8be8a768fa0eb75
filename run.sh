#!/usr/bin/env bash
# One entry point for a fresh machine with only Python 3.11:
#   ./run.sh dashboard   create .venv if needed, install requirements, start the Streamlit app
#                        (on localhost; `--server.address 0.0.0.0` serves others: docs/serving.md)
#   ./run.sh test        same setup plus requirements-scale.txt (Ray), then the test suite (arguments go to pytest)
#   ./run.sh lint        same setup, then the linter (ruff, settings in pyproject.toml)
#   ./run.sh setup       only create/update .venv
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=.venv

setup() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "creating virtual environment in $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  install requirements.txt
}

# Reinstall a requirements file only when it changed since its last successful install.
install() {
  if ! cmp -s "$1" "$VENV/.installed-$1"; then
    echo "installing $1 (first time takes a few minutes)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -r "$1"
    cp "$1" "$VENV/.installed-$1"
  fi
}

command=${1:-help}
[ $# -gt 0 ] && shift
case "$command" in
  setup) setup ;;
  dashboard) setup; exec "$VENV/bin/python" -m streamlit run dashboard/app.py "$@" ;;
  test) setup; install requirements-scale.txt; exec "$VENV/bin/python" -m pytest "$@" ;;
  lint) setup; exec "$VENV/bin/python" -m ruff check "$@" ;;
  *) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
