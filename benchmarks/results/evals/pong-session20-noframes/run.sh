#!/usr/bin/env bash
# GPU session 20's device call (from the repository root, wheels carried in .whl,
# `bash training/device_tree.sh keep checkpoints/pong` beforehand): PPO for 1M steps in the
# dream of checkpoints/pong with the g_phi of cpu.sh (reads no frames; trained on 1M steps
# recorded without frames), scored in the real game beside random play.
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD
WORK=/root/nw WORKERS=16 \
PPO_STEPS=1000000 PPO_DREAM_ENVS=128 PPO_SECONDS=${PPO_SECONDS:-680} EVAL_EPISODES=30 \
PPO_EVAL_POLICIES='dream random' \
PPO_DREAM_ARGS='--n-steps 16 --denoising-steps 1 --bf16-weights --max-episode-steps 128 --save-every 60 --resume' \
REWARDS_POLICIES='scripted random' REWARDS_ENVS=32 REWARDS_STEPS=256 REWARDS_TRACE=1 \
bash training/gpu_session.sh start NeuralPong-v0 'SEED=20 setup' 'SEED=9 ppo-dream' \
  'SEED=9 ppo-eval' 'SEED=20 export' 'SEED=20 rewards' 'SEED=20 export'
sleep 5
WORK=/root/nw bash training/gpu_session.sh poll NeuralPong-v0 540 --copy
# then, within 30 s of the last: WORK=/root/nw bash training/gpu_session.sh poll NeuralPong-v0 540 --copy
