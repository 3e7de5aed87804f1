#!/usr/bin/env bash
# Build, lint and unit-test the Fieldsafe VS Code extension, then run it end to end in code-server
# (real VS Code 1.100.3) driven by puppeteer-core + Debian chromium, with `fieldsafe emulator` as the
# Particle Cloud. Installs what is missing (apt packages, npm ci, ripgrep cache seed). Loopback only.
#
# Usage: clients/vscode/e2e/run-e2e.sh [--smoke | --not-installed]   (no argument: full flow + --not-installed)
# Env:   FIELDSAFE_PYTHON  interpreter that has fieldsafe installed (default: python3)
#        E2E_SKIP_APT=1    never call apt-get (fail instead when a package is missing)
#        E2E_KEEP=1        keep the temp workspace/logs for debugging
# Exit status: non-zero when any step or e2e check fails.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLIENT="$(dirname "$HERE")"
REPO="$(cd "$CLIENT/../.." && pwd)"
PYTHON="${FIELDSAFE_PYTHON:-python3}"
CODE_SERVER_VERSION="4.100.3"
RG_CACHE="${TMPDIR:-/tmp}/vscode-ripgrep-cache-1.15.11"
RG_TARBALL="$RG_CACHE/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz"

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'run-e2e: %s\n' "$*" >&2; exit 1; }

step "checking tools"
command -v node >/dev/null || die "node is not installed (Node 20+ needed)"
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge 20 ] || die "Node $node_major is too old: Node 20+ needed"
command -v npm >/dev/null || die "npm is not installed"
"$PYTHON" -c 'import fieldsafe' 2>/dev/null \
  || die "$PYTHON cannot import fieldsafe. Install with: $PYTHON -m pip install -e $REPO (or set FIELDSAFE_PYTHON)"

# apt packages: native build deps of code-server, the browser, ripgrep (seeds @vscode/ripgrep) and g++
# (the emulator's compiler and node-gyp).
missing=()
for pkg in libkrb5-dev libxkbfile-dev libsecret-1-dev chromium ripgrep g++ make; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ -z "${E2E_SKIP_APT:-}" ] || die "missing apt packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  step "apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] || die "$CHROMIUM not found (apt-get install chromium)"

step "extension: npm ci, lint, type-check, unit tests, package"
cd "$CLIENT"
npm ci --no-audit --no-fund
npm run -s lint
npm test
rm -f fieldsafe.vsix
npm run -s package
[ -s fieldsafe.vsix ] || die "npm run package did not produce fieldsafe.vsix"

step "e2e: code-server $CODE_SERVER_VERSION + puppeteer-core"
cd "$HERE"
stamp="node_modules/.fieldsafe-e2e-lock"
if [ -x node_modules/.bin/code-server ] && [ -f "$stamp" ] && cmp -s package-lock.json "$stamp"; then
  echo "node_modules up to date with package-lock.json"
else
  # @vscode/ripgrep's postinstall downloads rg from GitHub unless its cache already holds it.
  mkdir -p "$RG_CACHE"
  if [ ! -s "$RG_TARBALL" ]; then
    tar czf "$RG_TARBALL" -C "$(dirname "$(command -v rg)")" rg
  fi
  # npm 11 blocks install scripts unless package.json allowScripts lists them; code-server's
  # postinstall refuses root without unsafe-perm; node-pty runs `npx node-gyp` (needs yes).
  # node-gyp compiles code-server's native modules against Node's headers: use the ones installed with
  # this Node (Debian's nodejs ships /usr/include/node) instead of downloading them, and do not rely on
  # a machine-wide ~/.npmrc `nodedir` (a fresh machine has none).
  node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  if [ -z "${npm_config_nodedir:-}" ] && [ -f "$node_prefix/include/node/node.h" ]; then
    export npm_config_nodedir="$node_prefix"
  fi
  echo "node-gyp headers: ${npm_config_nodedir:-downloaded by node-gyp}"
  npm_config_unsafe_perm=true npm_config_yes=true npm ci --foreground-scripts --no-audit --no-fund >npm-ci.log 2>&1 \
    || { tail -n 60 npm-ci.log; die "npm ci in $HERE failed (full log: $HERE/npm-ci.log)"; }
  [ -x node_modules/.bin/code-server ] || die "code-server was not installed"
  cp package-lock.json "$stamp"
fi
node_modules/.bin/code-server --version | head -1

step "e2e: running"
FIELDSAFE_PYTHON="$PYTHON" CHROMIUM="$CHROMIUM" timeout 600 node e2e.mjs "$@"

if [ "$#" -eq 0 ]; then
  bare="${E2E_BARE_PYTHON:-/usr/bin/python3}"
  if [ -x "$bare" ] && ! "$bare" -c 'import fieldsafe' 2>/dev/null; then
    step "e2e: interpreter without fieldsafe ($bare) gets the install notification"
    E2E_BARE_PYTHON="$bare" FIELDSAFE_PYTHON="$PYTHON" CHROMIUM="$CHROMIUM" timeout 300 node e2e.mjs --not-installed
  else
    echo "skipping the --not-installed e2e: no interpreter without fieldsafe (set E2E_BARE_PYTHON)"
  fi
fi
