#!/usr/bin/env bash
# GPU session 27's device runs (from the repository root, wheels carried in .whl,
# `bash training/device_tree.sh keep checkpoints/pong` beforehand), each call within 30 s of
# the last, so that the host and its disk ($WORK) stay:
#   start (then poll): PPO in checkpoints/pong's dream with session 26's fine-tuned g_phi
#     (trained on 500k steps of session 25's real-trained agent), the settings of session 26's
#     run (seed 9, 128 envs, n-steps 16, 1M steps or 700 s, one denoising step, bf16 weights,
#     128-step dream episodes); scored in 30 real games (ppo-eval), then that agent's points in
#     the dream against the game's, each played on its own (rewards, 32 envs x 500 steps), and
#     the export.
#   relative (then poll): g_phi fine-tuned with the positions' differences and velocities as
#     looked-up inputs (--relative-classes 24), as session 26's gphi run otherwise (2,000,000
#     steps recorded without frames, seed 27: 800k scripted, 500k random, 200k sticky-random,
#     500k of session 25's real-trained agent, carried as .agent/real.zip; checkpoints/pong's
#     g_phi scored on their test windows first; 6,000 steps of 256 windows at window 32, peak
#     lr 2e-4), then PPO in that g_phi's dream, scored and its rewards, as in `start`.
#   relgphi: the `relative` mode's g_phi part alone (no PPO), and beside it the control: the
#     same fine-tune of checkpoints/pong's g_phi on the same data, steps and seed without the
#     looked-up inputs (metadata_eval-control.json).
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD WORK=/root/nw WORKERS=16
G=$WORK/NeuralPong-v0
export PPO_STEPS=1000000 PPO_DREAM_ENVS=128 PPO_SECONDS=700 EVAL_EPISODES=30 \
  PPO_DREAM_ARGS='--n-steps 16 --denoising-steps 1 --bf16-weights --max-episode-steps 128 --save-every 60 --resume' \
  PPO_EVAL_POLICIES='dream' REWARDS_POLICIES="$G/ppo/dream.zip" REWARDS_TRACE=1
EVAL="--eval-rollout 32 --eval-rollout-windows 512"
export SCRIPTED_EPISODE=6000 NOFRAMES_SCRIPTED=800000 NOFRAMES_RANDOM=500000 \
  NOFRAMES_STICKY=200000 NOFRAMES_PPO=500000 META_NOFRAMES=1 META_STEPS=6000 \
  META_EVAL_ARGS="$EVAL" \
  META_BASE="--window 32 --lr 2e-4 --no-latent-input --delta-classes 24 --no-categorical-as-classes --event-weight 5 --reg-loss l1 --batch-size 256 $EVAL"
export META_ARGS="$META_BASE --relative-classes 24"
case ${1:-poll} in
  start) bash training/gpu_session.sh start NeuralPong-v0 'SEED=9 setup ppo-dream' \
           'SEED=9 ppo-eval' 'SEED=27 rewards' 'SEED=27 export'
         sleep 5 ;;
  relative) mkdir -p "$G/ppo" && cp .agent/real.zip "$G/ppo/real.zip"
         bash training/gpu_session.sh start NeuralPong-v0 \
           'SEED=27 setup record-noframes metadata-eval' 'SEED=27 LIMIT=200 metadata' \
           'SEED=9 ppo-dream' 'SEED=9 ppo-eval' 'SEED=27 rewards' 'SEED=27 export'
         sleep 5 ;;
  relgphi) mkdir -p "$G/ppo" && cp .agent/real.zip "$G/ppo/real.zip"
         bash training/gpu_session.sh start NeuralPong-v0 \
           'SEED=27 setup record-noframes metadata-eval' 'SEED=27 LIMIT=200 metadata' \
           'SEED=27 export'
         sleep 5; bash training/gpu_session.sh poll NeuralPong-v0 400 --copy
         rm -rf "$G/control" && mkdir -p "$G/control"
         cp checkpoints/pong/config.json checkpoints/pong/*.safetensors "$G/control/"
         # shellcheck disable=SC2086  # word splitting of the flags is wanted
         timeout 200 python3 training/train_metadata.py --cache "$G/metadata-noframes" \
           --out "$G/control" --steps 6000 --checkpoint-every 500 --device cuda \
           $META_BASE 2>&1 | tr '\r' '\n' | grep -v "it/s" | tail -15
         cp "$G/control/metadata_eval.json" "$OUT/metadata_eval-control.json"; exit ;;
esac
bash training/gpu_session.sh poll NeuralPong-v0 "${2:-540}" --copy
