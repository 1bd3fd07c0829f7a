#!/usr/bin/env bash
# Quick start: install dependencies, build, and run the gateway on examples/parley.yaml
# (SQLite store in var/, a `webhook` channel named `hooks`, HTTP on 127.0.0.1:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
exec build/parley run -c examples/parley.yaml
