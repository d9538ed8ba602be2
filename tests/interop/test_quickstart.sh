#!/usr/bin/env bash
# README's first command, exercised in CI: the quick-start demo in its non-interactive --check mode (seed the bundled
# demo, download it with real clients from 127.0.0.1, verify every byte, stop the seeder cleanly).
# Usage (ctest): test_quickstart.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
exec timeout -k 10 240 bash "$src/scripts/quickstart.sh" --check --no-setup --build-dir "$build"
