#!/usr/bin/env bash
# Install everything fieldsafe's tests need on a fresh Debian machine, then run ALL tests:
# lint, the Python suite (unit, language server with pytest-lsp, emulator, particle-cli interop,
# headless Neovim), the VS Code extension's unit tests and its end-to-end test in code-server.
# This is the README's test command; .ci/run runs exactly this script.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
step() { printf '\n=== %s (%ss)\n' "$1" "$SECONDS"; }

step "apt packages (g++, the ARM cross compiler for the emulator, neovim, emacs + eglot, chromium, code-server build deps)"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
  g++ gcc-arm-none-eabi libstdc++-arm-none-eabi-dev libnewlib-arm-none-eabi make git neovim emacs-nox elpa-eglot chromium ripgrep libkrb5-dev libxkbfile-dev libsecret-1-dev ca-certificates >/dev/null

step "python package + test tools"
python3 -m pip install -q --disable-pip-version-check -e ".[test]"

step "Particle's reference tools (particle-cli, binary-version-reader) from npm"
(cd tools/npm && npm ci --no-audit --no-fund --loglevel=error)

step "lint"
ruff check server tests bench
ruff format --check server tests bench

step "python tests"
export FIELDSAFE_REQUIRE_E2E=1
python3 -m pytest -q -W error::pytest_lsp.LspSpecificationWarning -p no:cacheprovider

if [ -f clients/vscode/e2e/run-e2e.sh ]; then
  step "VS Code extension: build, lint, unit tests, end-to-end in code-server"
  bash clients/vscode/e2e/run-e2e.sh
fi
step "all tests passed"
