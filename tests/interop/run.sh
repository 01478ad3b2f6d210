#!/usr/bin/env bash
# CI entry point: install the pinned MCP clients, then run the interop tests against them.
# In here a missing client fails the run instead of skipping (SUBAGENTS_INTEROP_REQUIRED=1).
#   PYTHON                 interpreter with the package and its test extras (default: python)
#   SUBAGENTS_INTEROP_DIR  where setup.sh installs (default: <repo>/.interop)
# Extra arguments go to pytest, e.g. `tests/interop/run.sh -k inspector`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
t0=$(date +%s)
bash tests/interop/setup.sh
SUBAGENTS_INTEROP_REQUIRED=1 "${PYTHON:-python}" -m pytest tests/interop -m interop -q -p no:cacheprovider -n0 "$@"
echo "interop: passed in $(( $(date +%s) - t0 )) s" >&2
