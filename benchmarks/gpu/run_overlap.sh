#!/usr/bin/env bash
# Does a GPU build keep the GPU busy? (issue 18's last goal), for a session lent an accelerator.
# Run from the repository root after run_tokenize.sh (it reuses the full-size random model
# folder that run writes). About 5 minutes on an H200 with 16 cores: an hour of LibriTTS-shaped
# audio tokenized alone, annotated alone on -j W CPU workers, and built whole (annotate +
# tokenize) on the local and the Ray engine, nvidia-smi sampling utilisation every 200 ms.
set -euo pipefail
OUT="${OUT:-benchmarks/gpu}"
WORKERS="${WORKERS:-$(( $(nproc) / 2 ))}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python3 benchmarks/bench_overlap.py --device cuda --hours "${HOURS:-1.0}" --workers "$WORKERS" --engines local,ray
cp benchmarks/results/overlap.json "$OUT/overlap_cuda.json"
