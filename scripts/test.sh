#!/usr/bin/env bash
# Install voicelab with its test dependencies into .venv and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install --quiet --upgrade pip
python -m pip install --quiet -e ".[test]"
ruff check voicelab tests bench
mypy  # voicelab/, configured in pyproject.toml [tool.mypy]
# The browser tests (tests/browser) need Debian's chromium: installed here when run as root with apt-get.
# Elsewhere they skip with the reason; in CI (CI=true) a missing browser is a failure.
if ! bash scripts/install-browser.sh; then
  if [ "${CI:-}" = "true" ]; then exit 1; fi
  echo "the browser tests will be skipped (see above)"
fi
set +e
python -m pytest -q "$@"
code=$?
set -e
# pytest exits 5 when it collected no tests: that is not a failure of the suite.
if [ "$code" -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi
exit "$code"
