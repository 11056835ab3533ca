#!/usr/bin/env bash
# GPU session 28's device runs (from the repository root, wheels carried in .whl,
# `bash training/device_tree.sh keep checkpoints/pong` beforehand), each call within 30 s of
# the last, so that the host and its disk ($WORK) stay:
#   start (then poll): one background run of two parts.
#     1. PPO in checkpoints/pong's dream (session 26's g_phi, fine-tuned on 500k steps of a
#        real-trained agent's play) with session 26's settings (seed 9, 128 envs, n-steps 16,
#        1M steps or 700 s, one denoising step, bf16 weights, 128-step dream episodes), scored
#        in 30 real games (ppo-eval), and that agent's points in the dream against the game's
#        each played on its own (rewards, 32 envs x 500 steps, traces kept).
#     2. 2,000,000 steps recorded without frames (seed 28: 800k scripted, 500k random, 200k
#        sticky-random and 500k of the agent part 1 trained, ppo/dream.zip: the real-trained
#        agent of sessions 25-27 was not kept); checkpoints/pong's g_phi scored on their test
#        windows (metadata_eval-start.json), then fine-tuned 6,000 steps of 256 windows at
#        window 32, peak lr 2e-4, with the positions' differences and velocities as looked-up
#        inputs (--relative-classes 24; metadata_eval.json); the export.
#   episodes (moved to evals/pong-session29/gpu.sh, where session 29's lease ran it and lost it):
#     two PPO runs side by side in checkpoints/pong's dream (the g_phi with looked-up inputs),
#     session 26's settings, one with the 128-step dream episodes of every run so far
#     (ppo/dream.zip), one with 512-step episodes (ppo/dream512.zip); each stops at 1M steps or
#     720 s. Both scored in 30 real games, their points in the dream against the game's
#     (rewards), and the export. About 1,000 s on the host.
#   control: after `start` is done, the same fine-tune without the looked-up inputs
#     (metadata_eval-control.json), and session 27's onestep.py on the recording's test
#     episodes for the three g_phi (onestep-*.txt).
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD WORK=/root/nw WORKERS=16
G=$WORK/NeuralPong-v0
export PPO_STEPS=1000000 PPO_DREAM_ENVS=128 PPO_SECONDS=700 EVAL_EPISODES=30 \
  PPO_DREAM_ARGS='--n-steps 16 --denoising-steps 1 --bf16-weights --max-episode-steps 128 --save-every 60 --resume' \
  PPO_EVAL_POLICIES='dream' REWARDS_POLICIES="$G/ppo/dream.zip" REWARDS_TRACE=1
EVAL="--eval-rollout 32 --eval-rollout-windows 512"
export SCRIPTED_EPISODE=6000 NOFRAMES_SCRIPTED=800000 NOFRAMES_RANDOM=500000 \
  NOFRAMES_STICKY=200000 NOFRAMES_PPO=500000 NOFRAMES_PPO_MODEL="$G/ppo/dream.zip" \
  META_NOFRAMES=1 META_STEPS=6000 META_EVAL_ARGS="$EVAL" \
  META_BASE="--window 32 --lr 2e-4 --no-latent-input --delta-classes 24 --no-categorical-as-classes --event-weight 5 --reg-loss l1 --batch-size 256 $EVAL"
export META_ARGS="$META_BASE --relative-classes 24"
case ${1:-poll} in
  start) bash training/gpu_session.sh start NeuralPong-v0 'SEED=9 setup ppo-dream' \
           'SEED=9 ppo-eval' 'SEED=27 rewards' \
           'SEED=28 record-noframes metadata-eval' 'SEED=28 LIMIT=200 metadata' 'SEED=28 export'
         sleep 5 ;;
  # episodes: ran once in session 29 and was lost (the two runs raced to copy the model;
  # the host was taken back); the plan moved to evals/pong-session29/gpu.sh
  control)
         bash training/gpu_session.sh poll NeuralPong-v0 300 --copy
         rm -rf "$G/control" && mkdir -p "$G/control"
         cp checkpoints/pong/config.json checkpoints/pong/*.safetensors "$G/control/"
         # shellcheck disable=SC2086  # word splitting of the flags is wanted
         timeout 220 python3 training/train_metadata.py --cache "$G/metadata-noframes" \
           --out "$G/control" --steps 6000 --checkpoint-every 500 --device cuda \
           $META_BASE 2>&1 | tr '\r' '\n' | grep -v "it/s" | tail -15
         cp "$G/control/metadata_eval.json" "$OUT/metadata_eval-control.json"
         step=onestep.py  # session 27's, copied to the root beside this file (as `keep` leaves
         # benchmarks/results out of the tree)
         for m in checkpoints/pong:committed "$G/model":rel24 "$G/control":ctl; do
           timeout 60 python3 "$step" "${m%:*}" "$G/metadata-noframes" 300 1 \
             > "$OUT/onestep-${m#*:}.txt" 2>&1 || echo "onestep ${m#*:}: failed or cut" >&2
         done; exit ;;
esac
bash training/gpu_session.sh poll NeuralPong-v0 "${2:-540}" --copy
