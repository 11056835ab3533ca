#!/usr/bin/env bash
# GPU session 22's device run (one H100; from the repository root, wheels carried in .whl,
# `bash training/device_tree.sh keep checkpoints/pong` beforehand), started once and then
# polled (`poll`, each call within 30 s of the last):
#   checkpoints/pong's denoiser (metadata maps, context dropout 0.5) gains position maps
#   (train_denoiser.py --position-maps: ball_x, ball_y, player_y as stripes at their pixels)
#   and is fine-tuned with context dropout 0.75 on 120k new steps (seed 22); pong_frames
#   --control without context (-1); the folder's sampler set to no context; PPO for 1M steps
#   in that dream (seed 9, 128 envs, as sessions 16 and 20) scored in the real game
#   (benchmarks/results/ppo/pong-h100-session22); then, on the same host, `run.sh rewards`:
#   dream_rewards.py (scripted and random play, 32 envs x 256 steps, traces) in that dream.
# Here: session.log (the run's log), pong_frames-noise-1.json (H100, 64 windows),
# pong_frames-committed-cpu.json (the committed files on the 2-core CPU, 48 windows),
# denoiser_eval.json, rewards-*.json and their traces. rewards-ppo-cpu.*: on the 2-core CPU,
# that run's dream-trained agent (ppo-dream.zip, 25 MB, not committed) in the committed folder
# as it then was (session 20's g_phi) and in the real game, 8 envs x 128 steps:
#   python benchmarks/dream_rewards.py --env NeuralPong-v0 --model checkpoints/pong \
#     --policy ppo-dream.zip --envs 8 --steps 128 --device cpu --seed 22 \
#     --json rewards-ppo-cpu.json --trace rewards-ppo-cpu.trace.npz
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD WORK=/root/nw WORKERS=16
export RECORD_STEPS=30000 RANDOM_STEPS=20000 SCRIPTED_STEPS=70000
export FRAMES_ARGS='--envs 16 --steps 64 --control 64 --denoising-steps 1'
export PPO_STEPS=1000000 PPO_DREAM_ENVS=128 PPO_SECONDS=680 EVAL_EPISODES=30
export PPO_EVAL_POLICIES='dream random'
export PPO_DREAM_ARGS='--n-steps 16 --denoising-steps 1 --bf16-weights --max-episode-steps 128 --save-every 60 --resume'
export DEN_STEPS=3500 DEN_SECONDS=300 FRAMES_NOISE='-1'
export DEN_ARGS='--metadata-maps --position-maps --context-drop 0.75'
case ${1:-start} in
  start) bash training/gpu_session.sh start NeuralPong-v0 'SEED=22 setup record latents' \
           'SEED=22 LIMIT=500 denoiser' 'SEED=22 frames' 'SEED=22 export' \
           'SEED=22 SAMPLER_NOISE=-1 sampler' 'SEED=9 ppo-dream' 'SEED=9 ppo-eval' \
           'SEED=22 export'
         sleep 5 ;;
  rewards) REWARDS_POLICIES='scripted random' REWARDS_ENVS=32 REWARDS_STEPS=256 REWARDS_TRACE=1 \
           SEED=22 timeout 200 bash training/gpu_pipeline.sh NeuralPong-v0 rewards
           exit ;;
esac
bash training/gpu_session.sh poll NeuralPong-v0 540 --copy
