#!/usr/bin/env bash
# One entry point for a fresh machine with only Python 3.11:
#   ./run.sh dashboard   create .venv if needed, install requirements, start the Streamlit app
#                        (on localhost; `--server.address 0.0.0.0` serves others: README, "Serving to others")
#   ./run.sh test        same setup, then run the test suite (extra arguments go to pytest)
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
  # Reinstall only when requirements.txt changed since the last successful install.
  if ! cmp -s requirements.txt "$VENV/.installed-requirements"; then
    echo "installing requirements (first time takes a few minutes)"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    "$VENV/bin/python" -m pip install --quiet -r requirements.txt
    cp requirements.txt "$VENV/.installed-requirements"
  fi
}

command=${1:-help}
[ $# -gt 0 ] && shift
case "$command" in
  setup) setup ;;
  dashboard) setup; exec "$VENV/bin/python" -m streamlit run dashboard/app.py "$@" ;;
  test) setup; exec "$VENV/bin/python" -m pytest "$@" ;;
  *) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
