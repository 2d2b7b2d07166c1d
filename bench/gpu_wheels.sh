#!/usr/bin/env bash
# Download the wheels the GPU machine lacks into .whl/ (ignored by git), for its
# Python 3.12 on x86-64: fair-esm (the reference of the correctness and
# throughput parts) and dnaio with the compression modules xopen needs (FASTA
# input of predict). Everything else the project imports is in the machine's
# image (/work/.library/device/KINDS.md lists it). Versions: those tested here.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
exclude="$(git rev-parse --git-path info/exclude)"
grep -qx '/.whl/' "$exclude" 2>/dev/null || echo '/.whl/' >>"$exclude"
python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    fair-esm==2.0.0 dnaio==1.2.4 xopen==2.1.0 isal==1.9.1 zlib-ng==1.1.0 \
    backports.zstd==1.8.0
ls -l .whl
