#!/usr/bin/env bash
# GPU session 20's g_phi, trained on this project's 2-core CPU machine (from the repository
# root, with .venv): 1,000,000 steps recorded without frames (record-noframes: 600k scripted,
# 200k random, 200k sticky-random), their cache of metadata only, and a new g_phi that reads no
# frames (--fresh --no-latent-input) trained on it for 6,000 steps of 256 windows in a copy of
# checkpoints/pong (as of commit a5e6ecf); its metadata component then replaced
# checkpoints/pong's (config.json, metadata.safetensors, metadata_eval.json).
set -euo pipefail
export PATH=$PWD/.venv/bin:$PATH
WORK=${WORK:-/tmp/cpu20} DEVICE=cpu WORKERS=2 SEED=20 SCRIPTED_EPISODE=6000 \
NOFRAMES_SCRIPTED=600000 NOFRAMES_RANDOM=200000 NOFRAMES_STICKY=200000 META_NOFRAMES=1 \
META_STEPS=6000 LIMIT=3000 \
META_ARGS="--fresh --no-latent-input --delta-classes 24 --no-categorical-as-classes --event-weight 5 --reg-loss l1 --batch-size 256 --eval-rollout 32 --eval-rollout-windows 512" \
bash training/gpu_pipeline.sh NeuralPong-v0 record-noframes metadata
