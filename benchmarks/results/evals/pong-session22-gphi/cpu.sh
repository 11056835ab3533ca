#!/usr/bin/env bash
# Session 22, on this project's 2-core CPU machine (from the repository root, with .venv):
# checkpoints/pong's g_phi (session 20's, reads no frames) trained on: 1,000,000 new steps
# recorded without frames (seed 22: 600k scripted, 200k random, 200k sticky-random), first
# scored as it is on their test windows (metadata-eval: metadata_eval-start.json), then
# fine-tuned 12,000 steps of 256 windows at a peak lr of 3e-4 (or until LIMIT seconds) and
# scored again (metadata_eval.json), closed loop over 32 calls from 512 test windows.
# (cpu.log: the first run's metadata stage stopped for want of --no-latent-input, since added;
# the stage was then run alone: STAGES=metadata bash .../cpu.sh)
# Then, in the dream of the committed folder (the new g_phi) and of a copy holding session 20's
# g_phi (rewards-random-start.*), random play on the CPU, 16 envs x 128 steps, seed 22:
#   python benchmarks/dream_rewards.py --env NeuralPong-v0 --model checkpoints/pong \
#     --policy random --envs 16 --steps 128 --device cpu --seed 22 \
#     --json $G/rewards-random.json --trace $G/rewards-random.trace.npz
set -euo pipefail
export PATH=$PWD/.venv/bin:$PATH
EVAL="--eval-rollout 32 --eval-rollout-windows 512"
WORK=${WORK:-/tmp/cpu22g} DEVICE=cpu WORKERS=2 SEED=22 SCRIPTED_EPISODE=6000 \
NOFRAMES_SCRIPTED=600000 NOFRAMES_RANDOM=200000 NOFRAMES_STICKY=200000 META_NOFRAMES=1 \
META_STEPS=12000 LIMIT=${LIMIT:-1500} META_EVAL_ARGS="$EVAL" \
META_ARGS="--lr 3e-4 --no-latent-input --delta-classes 24 --no-categorical-as-classes --event-weight 5 --reg-loss l1 --batch-size 256 $EVAL" \
bash training/gpu_pipeline.sh NeuralPong-v0 ${STAGES:-record-noframes metadata-eval metadata}
