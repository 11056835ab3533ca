#!/usr/bin/env bash
# GPU session 23's first device run (one H100; from the repository root, wheels carried in
# .whl, `bash training/device_tree.sh keep checkpoints/pong` beforehand), started once and then
# polled (`poll`, each call within 30 s of the last):
#   PPO for 1M steps (seed 9, 128 envs, as sessions 16, 20 and 22) in the no-context dream of
#   checkpoints/pong as committed at the start of session 23 (session 22's g_phi, fine-tuned
#   on 1M frameless steps, and its position-map denoiser), scored in the real game
#   (benchmarks/results/ppo/pong-h100-session23); then dream_rewards.py (scripted and random
#   play, 32 envs x 256 steps, traces) in that dream; `run.sh zip` afterwards: the
#   dream-trained agent's .zip into $OUT in 14 MiB pieces.
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD WORK=/root/nw WORKERS=16
export PPO_STEPS=1000000 PPO_DREAM_ENVS=128 PPO_SECONDS=680 EVAL_EPISODES=30
export PPO_EVAL_POLICIES='dream random'
export PPO_DREAM_ARGS='--n-steps 16 --denoising-steps 1 --bf16-weights --max-episode-steps 128 --save-every 60 --resume'
export REWARDS_POLICIES='scripted random' REWARDS_ENVS=32 REWARDS_STEPS=256 REWARDS_TRACE=1
case ${1:-start} in
  start) bash training/gpu_session.sh start NeuralPong-v0 'SEED=9 setup' 'SEED=9 ppo-dream' \
           'SEED=9 ppo-eval' 'SEED=23 rewards' 'SEED=23 export'
         sleep 5 ;;
  zip) split -b 14M -d -a 1 "$(find $WORK -name dream.zip | head -1)" "$OUT/ppo-dream.zip.part"
       exit ;;
esac
bash training/gpu_session.sh poll NeuralPong-v0 540 --copy
