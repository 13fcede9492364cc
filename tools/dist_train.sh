#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG NUM_PROCS [tools/train.py args...]
# One process per GPU; on a machine without CUDA, one CPU process per rank
# (gloo, set up by tools/train.py). Multi-node: NNODES, NODE_RANK,
# MASTER_ADDR, PORT. Python: $PYTHON, else the repository's .venv, else
# `python` on PATH (tools/python.sh).

source "$(dirname "$0")/python.sh"

CONFIG=$1
GPUS=$2
mmrm_check_stack "$CONFIG"
NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PORT=${PORT:-29500}
MASTER_ADDR=${MASTER_ADDR:-"127.0.0.1"}

PYTHONPATH="$MMRM_ROOT":$PYTHONPATH \
"$PYTHON" -m torch.distributed.run \
    --nnodes=$NNODES \
    --node_rank=$NODE_RANK \
    --master_addr=$MASTER_ADDR \
    --nproc_per_node=$GPUS \
    --master_port=$PORT \
    "$MMRM_ROOT/tools/train.py" \
    $CONFIG \
    --launcher pytorch ${@:3}
