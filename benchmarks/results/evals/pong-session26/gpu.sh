#!/usr/bin/env bash
# GPU session 26's device runs (one H100; from the repository root, wheels carried in .whl,
# `bash training/device_tree.sh keep checkpoints/pong` beforehand), each call within 30 s of
# the last, so that the host and its disk ($WORK) stay:
#   start (then poll): PPO in checkpoints/pong's dream (session 24's window-32 g_phi; session
#     24's own try lost its host mid-run), seed 9, 128 envs, n-steps 16, 1M steps or 700 s, one
#     denoising step, bf16 weights, 128-step dream episodes; scored in 30 real games
#     (ppo-dream.json, dream.curve.csv), and the export. 1,001,472 steps in 565 s; -19.27
#     [-19.67, -18.80] (BENCHMARKS.md, "pong-h100-session26").
#   gphi: 2,000,000 steps recorded without frames on 16 cores (seed 26: 800k scripted, 500k
#     random, 200k sticky-random and 500k of session 25's real-trained agent, carried as
#     .agent/real.zip: its zip saved again with a fresh optimizer, 12 MB, to fit the 64 MiB the
#     tree may carry); checkpoints/pong's g_phi scored in closed loop on their test windows
#     (metadata_eval-start.json), fine-tuned 6,000 steps of 256 windows at window 32 and a peak
#     lr of 2e-4 and scored again (metadata_eval.json), and the export. 248 s. (Run as one
#     inline command in the session; this mode is that command.)
# Since this run checkpoints/pong holds the gphi run's g_phi, so `start` run again trains PPO in
# that g_phi's dream (the next step in docs/pong-dream-log.md).
# Six failed machine starts and one refused call came first (556 s of device time); 330 s
# was left at the end.
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD WORK=/root/nw WORKERS=16
G=$WORK/NeuralPong-v0
EVAL="--eval-rollout 32 --eval-rollout-windows 512"
export PPO_STEPS=1000000 PPO_DREAM_ENVS=128 PPO_SECONDS=700 EVAL_EPISODES=30 \
  PPO_DREAM_ARGS='--n-steps 16 --denoising-steps 1 --bf16-weights --max-episode-steps 128 --save-every 60 --resume' \
  PPO_EVAL_POLICIES='dream'
export SCRIPTED_EPISODE=6000 NOFRAMES_SCRIPTED=800000 NOFRAMES_RANDOM=500000 \
  NOFRAMES_STICKY=200000 NOFRAMES_PPO=500000 META_NOFRAMES=1 META_STEPS=6000 \
  META_EVAL_ARGS="$EVAL" \
  META_ARGS="--window 32 --lr 2e-4 --no-latent-input --delta-classes 24 --no-categorical-as-classes --event-weight 5 --reg-loss l1 --batch-size 256 $EVAL"
case ${1:-poll} in
  start) bash training/gpu_session.sh start NeuralPong-v0 'SEED=9 setup ppo-dream' \
           'SEED=9 ppo-eval' 'SEED=26 export'
         sleep 5 ;;
  gphi) mkdir -p "$G/ppo" && cp .agent/real.zip "$G/ppo/real.zip"
        bash training/gpu_session.sh start NeuralPong-v0 'SEED=26 record-noframes metadata-eval' \
          'SEED=26 LIMIT=200 metadata' 'SEED=26 export'
        sleep 5; bash training/gpu_session.sh poll NeuralPong-v0 420 --copy; exit ;;
esac
bash training/gpu_session.sh poll NeuralPong-v0 "${2:-540}" --copy
