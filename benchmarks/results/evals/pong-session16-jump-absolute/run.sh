#!/usr/bin/env bash
# 600 g_phi steps from checkpoints/pong with and without --jump-absolute, on new data, and
# the starting g_phi, each scored one step ahead and in closed loop (own metadata) on the
# same held-out windows
set -uo pipefail
export PYTHONPATH=/tmp/site:$PWD
W=/root/nw; E=NeuralPong-v0
WORK=$W WORKERS=16 RECORD_STEPS=20000 RANDOM_STEPS=10000 SCRIPTED_STEPS=30000 SCRIPTED_EPISODE=6000 \
  SEED=17 bash training/gpu_pipeline.sh $E setup record latents > $OUT/setup.log 2>&1
tail -3 $OUT/setup.log
for v in start base jabs; do rm -rf $W/$v; cp -r checkpoints/pong $W/$v; done
common="--cache $W/$E/latents --device cuda --eval-rollout 32 --eval-rollout-windows 512"
train="--steps 600 --checkpoint-every 300 --delta-classes 24 --event-weight 5 --reg-loss l1"
python3 training/train_metadata.py $common --out $W/start --eval-only > $OUT/start.log 2>&1 &
python3 training/train_metadata.py $common --out $W/base $train > $OUT/base.log 2>&1 &
python3 training/train_metadata.py $common --out $W/jabs $train --jump-absolute > $OUT/jabs.log 2>&1 &
wait
for v in start base jabs; do
  cp $W/$v/metadata_eval.json $OUT/$v-eval.json
  echo "== $v"; tr '\r' '\n' < $OUT/$v.log | grep -v 'it/s' | grep 'jump\|own metadata\|mean MAE\|trained'
done
