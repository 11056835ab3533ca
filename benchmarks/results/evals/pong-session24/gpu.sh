#!/usr/bin/env bash
# GPU session 24's second device run (one H100; from the repository root, wheels carried in
# .whl, `bash training/device_tree.sh keep checkpoints/pong` beforehand): the first run's
# g_phi again (gpu-lost.sh, part 1, whose weights were lost with its host), exported this time:
#   2,000,000 steps recorded without frames on 16 cores (seed 24: 1M scripted, 800k random,
#   200k sticky-random); checkpoints/pong's g_phi (session 22's, window 8) scored on their
#   test windows (metadata_eval-start.json), then fine-tuned at window 32 (the serve pause
#   after a point is 16 steps, longer than 8) for 12,000 steps of 256 windows at a peak lr of
#   3e-4 and scored again (metadata_eval.json); dream_rewards.py in the new g_phi's
#   no-context dream (scripted and random play, 32 envs x 256 steps, traces); the export.
# (No PPO: the first run's PPO used up the device time it would have needed.)
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD WORK=/root/nw WORKERS=16
EVAL="--eval-rollout 32 --eval-rollout-windows 512"
export SCRIPTED_EPISODE=6000 NOFRAMES_SCRIPTED=1000000 NOFRAMES_RANDOM=800000 \
  NOFRAMES_STICKY=200000 META_NOFRAMES=1 META_STEPS=12000 META_EVAL_ARGS="$EVAL" \
  META_ARGS="--window 32 --lr 3e-4 --no-latent-input --delta-classes 24 --no-categorical-as-classes --event-weight 5 --reg-loss l1 --batch-size 256 $EVAL"
export REWARDS_POLICIES='scripted random' REWARDS_ENVS=32 REWARDS_STEPS=256 REWARDS_TRACE=1
case ${1:-start} in
  start) bash training/gpu_session.sh start NeuralPong-v0 \
           'SEED=24 setup record-noframes metadata-eval' 'SEED=24 LIMIT=360 metadata' \
           'SEED=24 rewards export'
         sleep 5 ;;
esac
bash training/gpu_session.sh poll NeuralPong-v0 540 --copy
