#!/usr/bin/env bash
# GPU session 29's device script, for the next lease (from the repository root, wheels carried
# in .whl, `bash training/device_tree.sh keep checkpoints/pong` beforehand; copy this file to
# the root as gpu.sh, as `keep` leaves benchmarks/results out of the tree), each call within
# 30 s of the last:
#   episodes (then poll): two PPO runs side by side in checkpoints/pong's dream (session 28's
#     g_phi with looked-up inputs), training/pong_dream.env's settings, one with the 128-step
#     dream episodes of every run so far (ppo/dream.zip), one with 512-step episodes
#     (ppo/dream512.zip); each stops at 1M steps or 720 s. Both scored in 30 real games, their
#     points in the dream against the game's (rewards), and the export. About 1,000 s.
# Session 29 ran session 28's copy of this plan: the two runs raced to copy the committed model
# (gpu_pipeline's init_model now locks) and the host was taken back mid-run. Session 30 ran the
# 512-step half only (evals/demonattack-session30/gpu.sh pong; ppo/pong-h100-session30), the
# 128-step half being sessions 26, 28 and 29's runs; so this plan is done.
set -euo pipefail
source training/pong_dream.env
case ${1:-poll} in
  episodes)
         export PPO_SECONDS=720 PPO_EVAL_POLICIES='dream dream512' \
           REWARDS_POLICIES="$G/ppo/dream.zip $G/ppo/dream512.zip"
         bash training/gpu_session.sh start NeuralPong-v0 'SEED=9 setup' '&SEED=9 ppo-dream' \
           '&SEED=9 PPO_DREAM_NAME=dream512 PPO_DREAM_EPISODE=512 ppo-dream' 'wait' \
           'SEED=9 ppo-eval' 'SEED=29 rewards' 'SEED=29 export'
         sleep 5 ;;
esac
bash training/gpu_session.sh poll NeuralPong-v0 "${2:-240}" --copy
