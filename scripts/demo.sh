#!/bin/sh
# Builds kfpc and runs the main job: the example training pipeline, on the local executor with
# the embedded defaults (state in ./.kfpc). Usage: scripts/demo.sh [extra kfpc run args]
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh build
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
./build/kfpc compile examples/train.kfp -o build/train.ir.json
exec ./build/kfpc run examples/train.kfp "$@"
