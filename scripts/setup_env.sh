#!/usr/bin/env bash
# Create or update the virtual environment .venv from a requirements file (default: requirements.txt).
# Re-running is cheap: pip runs again only when the requirements files changed.
set -euo pipefail
cd "$(dirname "$0")/.."
req="${1:-requirements.txt}"
py="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$py" -m venv .venv
stamp=".venv/.installed-$(basename "$req")"
want=$(cat requirements*.txt pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "Installing $req into .venv (first time: several minutes; torch comes from this machine's disk) ..."
  .venv/bin/python -m pip install -q --disable-pip-version-check -r "$req" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  # the project itself, editable: ccs_core and app_lib importable from anywhere, the `ccs` command
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi
