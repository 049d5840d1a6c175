#!/usr/bin/env bash
# The GPU path in one short run (made for a few minutes on a lent GPU; never part of CI):
#   1. the CUDA tests: a GPU run equals the CPU run, bf16 on the GPU resumes exactly, torchrun wraps the model in
#      DDP and FSDP over NCCL (one GPU: the same code path as many), samples written from a GPU run, generation
#      on the GPU follows the CPU;
#   2. training and sampling speed on the GPU against its own matmul throughput (benchmarks/*_speed.py --device);
#   3. `avdit train --preset bt-small --data bouncing-tones` (TRAIN_STEPS at batch 128, at most TRAIN_SECONDS),
#      exported to $OUT/model with its metrics, for evaluation on the CPU. The bundled model is such a run:
#      6000 steps took 3 min 55 s on an H200 (docs/gpu.md).
#
#   OUT=gpu_out bash benchmarks/gpu_check.sh [TRAIN_STEPS] [TRAIN_SECONDS]
#
# Needs a CUDA build of torch and the project's dependencies; PyAV may come as a wheel in .whl/ (the device
# machine has no package index).
set -uo pipefail
OUT=${OUT:-gpu_out}
STEPS=${1:-6000}
SECONDS_LIMIT=${2:-300}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
section() { echo; echo "== $1 ($(date +%T))"; }
{
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv
    python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(), 'bf16', torch.cuda.is_bf16_supported())"

    section "CUDA tests"
    timeout 180 python3 -m pytest tests/test_train.py tests/test_pipeline.py -k "cuda or gpu" -p no:cacheprovider -q -rs \
        --no-header -o addopts=""

    section "training speed, batch 32 (the CPU benchmark's batch)"
    timeout 120 python3 benchmarks/train_speed.py --device cuda --presets bt-small paper --batch 32 --steps 20
    section "training speed, bt-small bf16 at batch 256, eager and compiled"
    timeout 150 python3 benchmarks/train_speed.py --device cuda --presets bt-small --precisions bf16 --batch 256 \
        --steps 20 --compile
    section "sampling speed"
    timeout 90 python3 benchmarks/sample_speed.py --device cuda --presets bt-small paper --batches 64 \
        --measure-steps 10

    section "avdit train bt-small on Bouncing Tones: $STEPS steps at batch 128, at most $SECONDS_LIMIT s"
    run=/tmp/gpu_run
    timeout "$SECONDS_LIMIT" python3 -m avdit.cli train --preset bt-small --data bouncing-tones --num-clips 4096 \
        --steps "$STEPS" --batch-size 128 --checkpoint-every 500 --log-every 100 --device cuda --out "$run" 2>&1 \
        | tr '\r' '\n' | tail -n 12
    echo "train exit status: ${PIPESTATUS[0]}"
    tail -n 3 "$run/metrics.jsonl"
    # the fp16 export (10 MB) comes back; the fp32 snapshot (20 MB) is over the device tool's 16 MiB per file
    python3 -m avdit.cli export "$run" "$OUT/model" && cp "$run/metrics.jsonl" "$OUT/"
    section "done"
} 2>&1 | tee "$OUT/gpu_check.log"
