#!/usr/bin/env bash
# BiCodec on a GPU (issue 18's GPU goals), for a session lent an accelerator. Run from the
# repository root; results go to $OUT (default benchmarks/gpu). About 5 minutes on an H200,
# most of it writing the random full-size model folder and loading it.
#
# 1. float32 (exact; no TF32): batched against one clip at a time, 64 real clips.
# 2. bfloat16: speed, and agreement with float32 on the same clips (share of semantic frames
#    equal, clips whose 32 global tokens are identical): the mixed-precision measurement.
set -euo pipefail
OUT="${OUT:-benchmarks/gpu}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 benchmarks/bench_tokenize.py --device cuda --clips 64 --batch-size 16 --rounds 1 --reference none
cp benchmarks/results/tokenize.json "$OUT/tokenize_cuda_float32.json"
python3 benchmarks/bench_tokenize.py --device cuda --clips 64 --batch-size 32 --rounds 1 \
    --dtype bfloat16 --reference none --ops tokenize
cp benchmarks/results/tokenize.json "$OUT/tokenize_cuda_bfloat16.json"
