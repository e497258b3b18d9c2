#!/usr/bin/env bash
# The GPU checks, as one short script for a lent GPU machine (see docs/benchmarks.md):
# the images benchmark on Fashion-MNIST, then the tests that only run on CUDA.
# Usage: tools/gpu_checks.sh IDX_FOLDER OUT_FOLDER   (uses the machine's python3 and torch)
set -u
ROOT=${1:-/usr/share/datasets/fashion-mnist}
OUT=${2:-/tmp/gpu-checks}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)" | tee -a "$OUT/gpu.txt"
# The CUDA-only tests first: CUDA graphs must train to the eager weights before their speed
# means anything.
timeout "${TEST_TIMEOUT:-90}" python3 -m pytest -q -p no:cacheprovider \
    tests/train/test_cuda_graphs.py tests/train/test_numerical_policies.py \
    tests/data/images/test_augment.py -k "cuda or CUDA or fp16 or graph" 2>&1 | tail -20 \
    | tee "$OUT/gpu_tests.log"
# Data-parallel training through NCCL with one process (the DDP path on a one-GPU machine),
# then the trainer against the commit before the strategy seam, on the GPU (BASE_SRC: that
# commit's src/, e.g. from 'git archive 16d68f1 src | tar -x -C .base', carried along).
timeout 300 python3 -m torch.distributed.run --standalone --nproc-per-node 1 -m deepfit train \
    --data "$ROOT" --epochs 1 --quiet --out "$OUT/runs" --name ddp1 eval.plots=false 2>&1 \
    | tail -4 | tee "$OUT/ddp_nccl.log"
python3 -c "import json; t = json.load(open('$OUT/runs/ddp1/summary.json'))['training']; \
print(t['device'], t['processes'], t['seconds'])" 2>&1 | tee -a "$OUT/ddp_nccl.log"
if [ -n "${BASE_SRC:-}" ]; then
    timeout 300 python3 benchmarks/trainer_before_after.py --base-src "$BASE_SRC" --device cuda \
        --repeats 3 2>&1 | tee "$OUT/trainer_before_after.log"
fi
# Object detection on CUDA (issue #18): the default detector with its automatic values, bf16
# autocast where the GPU has it, on the synthetic smears (400 images, 5 epochs).
timeout 300 python3 benchmarks/detection_smear.py --bootstrap 200 \
    --json "$OUT/detection_smear.json" 2>&1 | tail -8 | tee "$OUT/detection_smear.log"
# The small-CNN targets, with CUDA graphs (and the lectures' arm), then eager for comparison.
python3 benchmarks/images.py --root "$ROOT" --epochs "${EPOCHS:-8}" --lecture-epochs 1 \
    --cuda-graphs --json "$OUT/images_cnn_graphs.json" 2>&1 | tee "$OUT/images_cnn_graphs.log"
python3 benchmarks/images.py --root "$ROOT" --epochs "${EPOCHS:-8}" --skip-lectures \
    --json "$OUT/images_cnn_eager.json" 2>&1 | tee "$OUT/images_cnn_eager.log"
# The ResNet target (>= 95 % within 60 s of training): ResNet-9, larger batches, no lectures
# arm; clothes mirrored are still the same clothes, so horizontal flips join the crop.
python3 benchmarks/images.py --root "$ROOT" --model resnet9 --epochs "${RESNET_EPOCHS:-20}" \
    --batch-size 256 --lr 0.004 --augment hflip,crop --skip-lectures --cuda-graphs \
    --json "$OUT/images_resnet9.json" 2>&1 | tee "$OUT/images_resnet9.log"
for graphs in true false; do
    python3 benchmarks/profile_step.py --device cuda --steps 40 --set "train.cuda_graphs=$graphs" \
        2>&1 | grep -v "^USDT" | head -40 | tee "$OUT/profile_step_graphs_$graphs.log"
done
# Last (the first thing to lose if time runs out): torch.compile instead of CUDA graphs.
timeout "${COMPILE_TIMEOUT:-150}" python3 benchmarks/images.py --root "$ROOT" \
    --epochs "${EPOCHS:-8}" --skip-lectures --compile --json "$OUT/images_cnn_compile.json" \
    2>&1 | tee "$OUT/images_cnn_compile.log"
