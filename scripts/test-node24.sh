#!/usr/bin/env bash
# Runs the test suite again on Node 24 LTS (the container image's runtime). Node 24 comes from the npm
# registry's `node` package, installed once into .tools/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=.tools/node24
if [ ! -x "$TOOLS/node_modules/.bin/node" ]; then
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-save --no-audit --no-fund --loglevel=error node@24 >/dev/null
fi
export PATH="$PWD/$TOOLS/node_modules/.bin:$PATH"
echo "Running the tests on Node $(node --version)"
node ./node_modules/vitest/vitest.mjs run "$@"
