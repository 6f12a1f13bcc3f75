#!/usr/bin/env bash
# Set up .venv (if needed) and start the explorer: bash scripts/app.sh [extra streamlit args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh requirements.txt
exec .venv/bin/streamlit run app.py "$@"
