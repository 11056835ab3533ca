#!/usr/bin/env bash
# Session 24, on this project's 2-core CPU machine (from the repository root, with .venv): the
# window-32 g_phi of gpu.sh trained on the CPU instead (not kept: it gave more false player
# points than the committed g_phi; the GPU-trained one was committed). 1,000,000 steps recorded
# without frames (seed 24: 500k scripted, 400k random, 100k sticky-random), checkpoints/pong's
# g_phi (session 22's, window 8) fine-tuned on them at window 32 for 4,000 steps of 256 windows
# at a peak lr of 3e-4 (about 31 minutes) and scored in closed loop over 32 calls from 512
# test windows (metadata_eval.json); the committed g_phi scored on the same test windows:
#   cp -r checkpoints/pong /tmp/starteval && python training/train_metadata.py \
#     --cache $WORK/NeuralPong-v0/metadata-noframes --out /tmp/starteval --eval-only \
#     --device cpu --eval-rollout 32 --eval-rollout-windows 512   # metadata_eval-start.json
set -euo pipefail
export PATH=$PWD/.venv/bin:$PATH
EVAL="--eval-rollout 32 --eval-rollout-windows 512"
WORK=${WORK:-/tmp/cpu24b} DEVICE=cpu WORKERS=2 SEED=24 SCRIPTED_EPISODE=6000 \
NOFRAMES_SCRIPTED=500000 NOFRAMES_RANDOM=400000 NOFRAMES_STICKY=100000 META_NOFRAMES=1 \
META_STEPS=4000 LIMIT=2100 META_EVAL_ARGS="$EVAL" \
META_ARGS="--window 32 --lr 3e-4 --no-latent-input --delta-classes 24 --no-categorical-as-classes --event-weight 5 --reg-loss l1 --batch-size 256 $EVAL" \
bash training/gpu_pipeline.sh NeuralPong-v0 record-noframes metadata
