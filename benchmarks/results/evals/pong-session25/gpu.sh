#!/usr/bin/env bash
# GPU session 25's device run (from the repository root, wheels carried in .whl,
# `bash training/device_tree.sh keep checkpoints/pong` beforehand), started once and polled
# (each call within 30 s of the last). Failed machine starts left too little device time for
# PPO in the dream (1M steps, ~700 s), so this run trains the real-game agent instead (seed
# 9, 128 envs, n-steps 16, 1M steps, the settings of sessions 15 and 16's real agent), scores
# it in the real game over 30 episodes, and plays it in checkpoints/pong's dream beside the
# game (dream_rewards.py, 32 envs x 256 steps, traces): does a policy that wins points in the
# game win them in the dream? The export brings back the results and the agent (ppo-real.zip).
# It ran in 425 s (gpu.log): PPO 1,001,472 steps in 277 s, -18.80 [-19.33, -18.17] over 30
# real games (ppo-real.json; sessions 15 and 16, same seed and settings on an H200: -17.63);
# its dream play in dream_rewards/pong-h100-session25-ppo-real.*. The agent itself is not
# committed (25 MB, pickled by stable-baselines3).
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD WORK=/root/nw WORKERS=16
G=$WORK/NeuralPong-v0
export PPO_STEPS=1000000 PPO_ENVS=128 PPO_SECONDS=480 EVAL_EPISODES=30
export PPO_ARGS='--n-steps 16 --save-every 60 --resume' PPO_EVAL_POLICIES='real'
export REWARDS_ENVS=32 REWARDS_STEPS=256 REWARDS_TRACE=1

case ${1:-start} in
  start) bash training/gpu_session.sh start NeuralPong-v0 'SEED=9 setup ppo-real' \
           'SEED=9 ppo-eval' 'SEED=25 export' \
           "SEED=25 REWARDS_POLICIES=$G/ppo/real.zip rewards" 'SEED=25 export'
         sleep 5 ;;
esac
bash training/gpu_session.sh poll NeuralPong-v0 "${2:-500}" --copy
