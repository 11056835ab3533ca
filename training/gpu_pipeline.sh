#!/usr/bin/env bash
# The GPU pipeline, one stage per command, run on the GPU host from the repository root:
#
#   bash training/gpu_pipeline.sh ENV_ID STAGE [STAGE ...]
#
# Stages: setup (install the carried wheels), record, vae, latents, metadata, denoiser,
# contexts (start contexts for the dream env), bench, export. Data and checkpoints stay in $WORK on the host's disk between calls; every training
# stage resumes from its checkpoint there, and the first one of a fresh host starts from the
# weights last committed (checkpoints/<game>/, else the shipped neuralgym/shipped/<game>/),
# so quality accumulates across sessions (bring the results back with
# training/export_model.py). `export` copies the world-model folder (config.json + safetensors) and the
# results to $OUT. Step counts per stage are environment variables; a stage that runs past
# $LIMIT seconds stops at its last checkpoint, which the next call resumes.
set -euo pipefail
ENV_ID=${1:?usage: gpu_pipeline.sh ENV_ID STAGE...}; shift
WORK=${WORK:-/root/neuralgym-work}/$ENV_ID
OUT=${OUT:-$WORK/out}
mkdir -p "$WORK" "$OUT"
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
DATA=$WORK/data; MODEL=$WORK/model; CACHE=$WORK/latents
RECORD_STEPS=${RECORD_STEPS:-100000}
VAE_STEPS=${VAE_STEPS:-1000}; META_STEPS=${META_STEPS:-3000}; DEN_STEPS=${DEN_STEPS:-3000}
DEN_ARGS=${DEN_ARGS:-}  # extra train_denoiser.py flags (model size, T, ablations)
LIMIT=${LIMIT:-400}  # seconds: a safety net per training stage
game=${ENV_ID#Neural}; game=${game%-v0}
start=checkpoints/${game,,}
[ -e "$start/config.json" ] || start=neuralgym/shipped/${game,,}  # predictors.shipped_model

log() { echo "[$(date +%T)] $*"; }
# run a training command for at most N seconds; a timeout is not a failure (it resumes)
budget() { local s=$1; shift; timeout --signal=TERM "$s" "$@" || [ $? -eq 124 ]; }

for stage in "$@"; do
  log "stage $stage"
  case $stage in
    setup)
      python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
      ;;
    record)
      python3 agents/record.py --env "$ENV_ID" --agent sticky-random --steps "$RECORD_STEPS" \
        --seed 0 --workers "$(nproc)" --max-episode-steps 2000 --state-every 50 --out "$DATA" \
        2>&1 | tr '\r' '\n' | grep -v "step/s" | tail -5
      ;;
    vae)
      lr=1e-3
      if [ ! -e "$MODEL/config.json" ] && [ -e "$start/config.json" ]; then
        mkdir -p "$MODEL" && cp "$start"/config.json "$start"/*.safetensors "$MODEL"/
        log "starting from the committed model $start"; lr=3e-4  # fine-tuning: a gentler peak
      fi
      budget "$LIMIT" python3 training/train_vae.py --data "$DATA" --out "$MODEL" \
        --steps "$VAE_STEPS" --checkpoint-every 250 --batch-size 64 --lr "$lr" \
        2>&1 | tr '\r' '\n' | grep -v "it/s" | tail -5
      ;;
    latents)
      rm -rf "$CACHE"
      python3 training/prepare_latents.py --data "$DATA" --model "$MODEL" --out "$CACHE" \
        --batch-size 512 2>&1 | tr '\r' '\n' | tail -3
      ;;
    metadata)
      budget "$LIMIT" python3 training/train_metadata.py --cache "$CACHE" --out "$MODEL" \
        --steps "$META_STEPS" --checkpoint-every 500 2>&1 | tr '\r' '\n' | grep -v "it/s" | tail -15
      ;;
    denoiser)
      budget "$LIMIT" python3 training/train_denoiser.py --cache "$CACHE" --out "$MODEL" \
        --stage cond --steps "$DEN_STEPS" --checkpoint-every 250 --batch-size 128 $DEN_ARGS \
        2>&1 | tr '\r' '\n' | grep -v "it/s" | tail -15
      ;;
    contexts)
      python3 training/make_start_contexts.py --data "$DATA" --model "$MODEL" --count 32
      ;;
    bench)
      python3 benchmarks/paired_rollout.py --env "$ENV_ID" --data "$DATA" --split test \
        --predictor "$MODEL" copy-last --episodes 50 --starts-per-episode 8 --batch-size 64 \
        --horizons 1 2 4 8 16 32 64 --device cuda --json "$OUT/paired.json" \
        --video "$OUT/paired.gif" 2>&1 | grep -v "start/s"
      ;;
    export)  # the weights, and the small results in one archive ($OUT takes 8 files)
      cp "$MODEL"/config.json "$MODEL"/*.safetensors "$OUT"/ 2>/dev/null || true  # <= 7 files
      (cd "$MODEL" && tar czf "$OUT/results.tgz" ./*_eval.json -C "$OUT" ./paired.json 2>/dev/null) || true
      ls -la "$OUT"
      ;;
    *) echo "unknown stage $stage" >&2; exit 2 ;;
  esac
done
