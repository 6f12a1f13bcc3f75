#!/usr/bin/env bash
# Set up .venv with the test requirements (and Debian's chromium for the browser test), run all tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh requirements-dev.txt
bash tests/setup_browser.sh
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest -q -p no:cacheprovider --timeout=300 tests "$@"
