#!/usr/bin/env bash
# Data-parallel training with deepfit on a Slurm cluster: one task per node, torchrun in
# each starting one process per GPU, the allocation's first node as the rendezvous point.
# The data and the output folder must be on a file system every node sees.
# Submit with: sbatch examples/slurm_ddp.sh   (edit the lines marked EDIT first)
#SBATCH --job-name=deepfit-ddp
#SBATCH --nodes=2                 # EDIT: machines
#SBATCH --ntasks-per-node=1       # one torchrun per machine
#SBATCH --gpus-per-node=4         # EDIT: GPUs per machine (= processes per machine)
#SBATCH --cpus-per-task=16        # EDIT: cores per machine (image decoding, data loading)
#SBATCH --time=02:00:00
set -euo pipefail

GPUS_PER_NODE=${SLURM_GPUS_ON_NODE:-4}
HEAD_NODE=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
PORT=29400

srun torchrun \
    --nnodes "$SLURM_NNODES" --nproc-per-node "$GPUS_PER_NODE" \
    --rdzv-backend c10d --rdzv-endpoint "$HEAD_NODE:$PORT" --rdzv-id "$SLURM_JOB_ID" \
    -m deepfit train --data /cluster/data/scans --model resnet18 \
    --out /cluster/runs --epochs 30                                   # EDIT: your run
# An interrupted job continues with the same lines and 'deepfit resume RUN' in place of
# 'deepfit train ...' (a checkpoint from N processes resumes on any number).
