#!/usr/bin/env bash
# Set up .venv (if needed) and start the explorer on 127.0.0.1: bash scripts/app.sh [--lan] [streamlit args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh requirements.txt
args=()
for a in "$@"; do
  if [ "$a" = "--lan" ]; then
    echo "WARNING: --lan serves the explorer to the whole network: anyone who can reach this machine can" >&2
    echo "open local image folders, pools and checkpoints by path and run judges on this server's API keys." >&2
    echo "In this mode local paths are limited to CCS_DATA_ROOTS and LLM judges use only keys typed in the browser." >&2
    export CCS_LAN=1
    args+=(--server.address 0.0.0.0)
  else
    args+=("$a")
  fi
done
exec .venv/bin/streamlit run app.py ${args[@]+"${args[@]}"}
