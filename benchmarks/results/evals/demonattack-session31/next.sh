#!/usr/bin/env bash
# The plan for the lease after GPU session 31 (copy this file to the repository root as gpu.sh;
# each call within 30 s of the last; about 1,400 s of device time):
#   bk (tree: `bash training/device_tree.sh keep breakout`, wheels carried in .whl): Breakout,
#     whose shipped model has had about 800 s of denoiser training on 340k steps (GPU sessions
#     1-3) where DemonAttack's has had 16,000 steps, fine-tuned from neuralgym/shipped/breakout
#     (copied out of the tree first: START): 250k sticky-random + 50k uniform-random steps of
#     new data (seed 6; Breakout's earlier recordings used seeds 0-5 and 9); g_phi 1,500 steps
#     beside the denoiser's 600 s (VAE and fast decoder kept); start contexts; the paired
#     benchmark on the test split; the heldout stage on a separate 100k-step recording (seed 7,
#     8 starts an episode) with the shipped model beside (BENCH_ALSO), per start, decoded as the
#     env decodes (each folder's default); the export. Breakout's targets: 1/4 of copy-last's MSE
#     at 1, 2 and 4 steps and 1/2 at 16 and 64 (the shipped model with its fast decoder:
#     0.18 / 0.21 / 0.36 and 0.57 / 0.75 on 133 starts; with its VAE decoder on 48 CPU starts
#     0.11 / 0.08 / 0.16 and 0.48 / 0.63).
#   pongreal (start it once bk's latents stage is done, so that its 128 workers do not meet the
#     recording and the encoding: session 31's failed as it started beside DemonAttack's):
#     PPO on the real game from scratch, 1M steps (at most 420 s each), pong_dream.env's PPO
#     settings (128 envs, n-steps 16), seeds 10, 11 and 12 one after another, each its own
#     agent in ppo/ (PPO_REAL_NAME=real<seed>: model, learning curve, whole log) and scored in
#     100 real games (results/ppo-real<seed>.json); polls bring back all but the models.
#     Sessions 16 and 25 ran seed 9 with the same settings and scored -17.63 and -18.80: the
#     dream agents' best (-18.88 to -18.97) is 47% or 92% of a real agent's gain over random,
#     by which agent; three more seeds say which.
#   poll [SECONDS]: Breakout's logs and results so far, and the Pong seeds', into $OUT.
# DemonAttack's next run (a later lease): session 31's gpu.sh da with DEN_ARGS='--change-boost 5
# --change-top 0.01 --change-reweight' (the boost's draw undone by importance weights: session
# 31's unweighted boost drew flashes that did not come) and its device time for the heldout
# stage (about 200 s for 1,013 starts), which session 31's lease did not reach.
set -euo pipefail
export PYTHONPATH=/tmp/site:$PWD WORK=/root/nw WORKERS=16
case ${1:-poll} in
  bk)
    rm -rf /root/bk-start && cp -r neuralgym/shipped/breakout /root/bk-start
    SEED=6 RECORD_STEPS=250000 RANDOM_STEPS=50000 START=/root/bk-start META_STEPS=1500 \
      DEN_STEPS=20000 DEN_SECONDS=600 CONTEXTS=24 BENCH_EPISODES=300 BENCH_STARTS=16 \
      BENCH_ARGS='--per-start' HELDOUT_STEPS=100000 HELDOUT_SEED=7 HELDOUT_STARTS=8 \
      BENCH_ALSO=/root/bk-start \
      NOTE='GPU session 32: the shipped model fine-tuned on 300k new steps (seed 6)' \
      bash training/gpu_session.sh start NeuralBreakout-v0 'setup record' 'LIMIT=300 latents' \
      '&LIMIT=300 metadata' 'LIMIT=700 denoiser' wait contexts 'BENCH_ALSO= bench' heldout \
      export
    sleep 20; ls /tmp/site | head -3 ;;
  pongreal)
    export PPO_ENVS=128 PPO_STEPS=1000000 PPO_SECONDS=420 PPO_ARGS='--n-steps 16 --save-every 60' \
      EVAL_EPISODES=100
    groups=()
    for s in 10 11 12; do
      groups+=("SEED=$s PPO_REAL_NAME=real$s PPO_EVAL_POLICIES=real$s ppo-real ppo-eval")
    done
    bash training/gpu_session.sh start NeuralPong-v0 "${groups[@]}"
    sleep 5 ;;
esac
running() { local l=$WORK/$1/logs; [ -d "$l" ] && [ ! -e "$l/DONE" ] && [ ! -e "$l/FAILED" ]; }
bk=0 pong=0
if running NeuralBreakout-v0 || ! running NeuralPong-v0; then bk=${2:-0}; else pong=${2:-0}; fi
if [ -d "$WORK/NeuralPong-v0/logs" ]; then
  bash training/gpu_session.sh poll NeuralPong-v0 "$pong" --copy
  mv "$OUT/logs.tgz" "$OUT/pong-logs.tgz"
fi
bash training/gpu_session.sh poll NeuralBreakout-v0 "$bk" --copy
