#!/usr/bin/env bash
# Install voicelab into .venv and run the offline demo (no key, no network).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e .
voicelab demo --out voicelab-demo "$@"
