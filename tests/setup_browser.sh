#!/usr/bin/env bash
# Install what the end-to-end browser test needs: Debian's chromium and Python playwright.
# Idempotent; the lead's .ci/run calls it before pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = "0" ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
if ! "$PY" -c "import playwright" 2>/dev/null; then
  "$PY" -m pip install -q playwright
fi
/usr/bin/chromium --version
