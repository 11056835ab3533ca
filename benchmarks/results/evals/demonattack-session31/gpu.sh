#!/usr/bin/env bash
# GPU session 31's device script, as it ran (session 30's next.sh, cut to fit the device time
# that was left after three failed starts: 1,290 s when the machine came): one H100, 16 cores.
#   da (tree: `bash training/device_tree.sh keep checkpoints/demonattack`, wheels carried in
#     .whl): DemonAttack from checkpoints/demonattack (session 30's), copied out of the tree
#     first (START): 200k sticky-random + 40k uniform-random steps of new data (seed 4); g_phi
#     fine-tuned 1,500 steps; the denoiser fine-tuned 480 s drawing the windows of the sharpest
#     changes (the top 1% by latent change: the player's hit flash) 5 times as often; start
#     contexts; the paired benchmark on the test split; the heldout stage on the seed-3
#     recording (the device time ran out during it; it was run on the CPU afterwards:
#     demonattack-cpu-session31-seed3-steps1); the export (not reached: the weights came back
#     by hand from the model folder, the denoiser cast to float16).
#   pong (tree: `keep checkpoints/pong`; wheels already installed): PPO in the dream of
#     checkpoints/pong with dream episodes of up to 2,048 steps, 720 s, scored in 100 real
#     games; beside it PPO on the real game (seed 10), which failed at its start
#     (evals/pong-session31/ppo-real.log), so ppo-eval failed after scoring the dream agent.
#   poll [SECONDS]: both runs' logs and results so far into $OUT.
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD WORK=/root/nw WORKERS=16
case ${1:-poll} in
  da)
    rm -rf /root/da-start && cp -r checkpoints/demonattack /root/da-start
    SEED=4 RECORD_STEPS=200000 RANDOM_STEPS=40000 START=/root/da-start META_STEPS=1500 \
      DEN_STEPS=6000 DEN_SECONDS=480 DEN_ARGS='--change-boost 5 --change-top 0.01' \
      CONTEXTS=24 BENCH_EPISODES=300 BENCH_STARTS=16 BENCH_ARGS='--per-start' \
      HELDOUT_STEPS=100000 HELDOUT_SEED=3 HELDOUT_STARTS=8 \
      NOTE='GPU session 31: fine-tuned on 300k new steps (seed 4), hit flashes drawn 5x as often' \
      bash training/gpu_session.sh start NeuralDemonAttack-v0 'setup record' 'LIMIT=300 latents' \
      '&LIMIT=300 metadata' 'LIMIT=580 denoiser' wait contexts \
      'BENCH_ALSO= bench' heldout export
    sleep 20; ls /tmp/site | head -3 ;;
  pong)
    source training/pong_dream.env
    export PPO_SECONDS=720 PPO_EVAL_POLICIES='dream2048 real' PPO_ENVS=128 \
      PPO_ARGS='--n-steps 16 --save-every 60'
    bash training/gpu_session.sh start NeuralPong-v0 '&SEED=10 ppo-real' \
      'SEED=9 PPO_DREAM_NAME=dream2048 PPO_DREAM_EPISODE=2048 ppo-dream' wait \
      'SEED=9 EVAL_EPISODES=100 ppo-eval'
    sleep 5 ;;
  pong2m)
    source training/pong_dream.env
    mkdir -p "$G/ppo" && cp .agent/dream512-s30.zip "$G/ppo/dream512.zip"
    cp .agent/dream512-s30.curve.csv "$G/ppo/dream512.curve.csv"
    export PPO_STEPS=2000000 PPO_SECONDS=1050 PPO_ENVS=128 EVAL_EPISODES=100 \
      PPO_ARGS='--n-steps 16 --save-every 60 --resume' PPO_EVAL_POLICIES='dream512 real'
    bash training/gpu_session.sh start NeuralPong-v0 '&SEED=9 ppo-real' \
      'SEED=9 PPO_DREAM_NAME=dream512 PPO_DREAM_EPISODE=512 ppo-dream' wait 'SEED=9 ppo-eval'
    sleep 5 ;;
esac
# the wait goes to a game still running (session 30's polls returned at once when DemonAttack
# was done and Pong was not, leaving 30 s to call again)
running() { local l=$WORK/$1/logs; [ -d "$l" ] && [ ! -e "$l/DONE" ] && [ ! -e "$l/FAILED" ]; }
da=0 pong=0
if running NeuralDemonAttack-v0 || ! running NeuralPong-v0; then da=${2:-0}; else pong=${2:-0}; fi
if [ -d "$WORK/NeuralPong-v0/logs" ]; then
  bash training/gpu_session.sh poll NeuralPong-v0 "$pong" --copy
  mv "$OUT/logs.tgz" "$OUT/pong-logs.tgz"
fi
bash training/gpu_session.sh poll NeuralDemonAttack-v0 "$da" --copy
