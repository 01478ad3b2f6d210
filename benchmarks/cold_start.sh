#!/usr/bin/env bash
# Cold start (spawn -> initialize -> tools/list) of `subagents serve` next to a bare MCPServer with four
# tools, measured in one run with the shared tool measure_peer.py. Usage: benchmarks/cold_start.sh [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
measure=${MEASURE_PEER:-$here/../../shared/tools/measure_peer.py}
runs=${1:-7}
py=${PYTHON:-python}
store=$(mktemp -d)
trap 'rm -rf "$store"' EXIT
"$py" "$measure" --runs "$runs" --label bare-mcpserver-4-tools -- "$py" "$here/bare_server.py"
"$py" "$measure" --runs "$runs" --label subagents-serve --env "SUBAGENTS_STORE=$store/runs.db" --show-tools \
    -- "$py" -m subagents serve --root "$here/.."
