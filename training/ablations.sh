#!/usr/bin/env bash
# The ablations, scripted for one GPU session, run on the GPU host from the repository root
# after `training/gpu_pipeline.sh ENV_ID setup record vae latents` has left a dataset, a VAE
# and a latent cache in $WORK/$ENV_ID:
#
#   bash training/ablations.sh [--dry-run] ENV_ID GROUP [GROUP ...]
#
# Groups (`all` = all four):
#   metadata  (a) metadata-conditioned vs metadata-ignorant denoiser (the first document's
#                 claim), T = 1 frame per call, future actions, action embedding
#   frames    (b) T = 1, 2, 4 frames per call x future vs past+future actions (the second
#                 document's Table 3)
#   actions   (c) learned action embedding vs one-hot, T = 1, 2, 4, future actions (Table 4)
#   gphi      (d) g_phi as GRU vs LSTM vs transformer: one-step metadata errors
#
# Every denoiser variant is a world-model folder $ABL_DIR/<variant>/ named
# <meta|nometa>-T<T>-<future|pastfuture>-<embedding|onehot>, holding the main model's VAE and
# g_phi (copied from $WORK/$ENV_ID/model, so all variants share them) and its own denoiser,
# trained from scratch on the same cache with the same steps, batch and seed. Groups that share
# a variant (frames and actions share the future + embedding ones; metadata and frames share
# nometa-T1-future-embedding) train it once. Each of the groups metadata, frames and actions
# then runs one benchmarks/paired_rollout.py over its variants and copy-last on the same test
# starts (it also keeps each start's values, for paired CIs of the differences). Group gphi
# trains components metadata_gru / metadata_lstm / metadata_transformer in $ABL_DIR/gphi/.
#
# Resumable: a variant whose <component>_eval.json exists with the same step count is done;
# an unfinished one resumes from its checkpoint; a group's rollout JSON is redone only when a
# variant finished after it. Each training runs at most $LIMIT seconds (and stops by
# $ABL_DEADLINE); the script then exits 75: run it again to go on. At exit (always), the
# results go to $OUT as two files: ablations.tgz (the folder `results/`: one rollout JSON per
# group, every variant's denoiser eval JSON, the g_phi eval JSONs, settings.json) and
# ABLATIONS.md (benchmarks/ablation_report.py on it).
#
# Variables (the pipeline's WORK, OUT, LIMIT, META_STEPS, plus):
#   ABL_STEPS=3000        optimiser steps per denoiser variant (the same for all)
#   ABL_BATCH=128         denoiser batch          ABL_SEED=0   seed of weights, batches, rollouts
#   ABL_ARGS=""           extra train_denoiser.py flags for every variant (model size,
#                         --context, --eval-windows ...); placed last, so they win
#   ABL_CKPT=250          checkpoint every N steps
#   ABL_META_STEPS=$META_STEPS (3000) and ABL_META_ARGS=""   for the g_phi variants
#   META_ARGS=""          extra flags when the main model has no g_phi yet and one is trained
#                         for it (what gpu_pipeline.sh's metadata stage would do)
#   ABL_FRAMES="1 2 4"    the T values of groups frames and actions
#   ABL_FRAMES_METADATA=0 groups frames/actions without metadata (the second document's
#                         setting); 1: metadata-conditioned
#   ABL_HORIZONS="1 2 4 8 16 32 64"  rollout horizons (frames/actions add 1..max T)
#   ABL_EPISODES=50 ABL_STARTS=8 ABL_BENCH_BATCH=64 ABL_SPLIT=test ABL_DEVICE=cuda  rollouts
#   ABL_DIR=$WORK/$ENV_ID/ablations
#   ABL_DEADLINE=0        seconds for this whole call (0: none); no training starts after it
#   ABL_JOBS=1            trainings at once: with N > 1 every variant of the requested groups
#                         (and the g_phi group, as one job) is trained first, N at a time,
#                         then the groups' rollouts run one after another
#   ABL_GPUS=""           GPU indices the parallel jobs take in turn (CUDA_VISIBLE_DEVICES),
#                         e.g. "2 3"; empty: every job sees the devices this script sees
#   ABL_DRY_RUN=0         1 (or --dry-run): print the commands instead of running them
#
# Exit status: 0 all requested groups done, 75 unfinished (run again), 2 usage, else an error.
set -euo pipefail
DRY=${ABL_DRY_RUN:-0}
args=()
for a in "$@"; do
  case $a in -n|--dry-run) DRY=1 ;; *) args+=("$a") ;; esac
done
set -- "${args[@]+"${args[@]}"}"
usage="usage: ablations.sh [--dry-run] ENV_ID GROUP... (groups: metadata frames actions gphi all)"
[ $# -ge 2 ] || { echo "$usage" >&2; exit 2; }
ENV_ID=$1; shift
groups=()
for g in "$@"; do
  case $g in
    metadata|frames|actions|gphi) groups+=("$g") ;;
    all) groups+=(metadata frames actions gphi) ;;
    *) echo "unknown group $g; $usage" >&2; exit 2 ;;
  esac
done

WORK=${WORK:-/root/neuralgym-work}/$ENV_ID
OUT=${OUT:-$WORK/out}
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}$PWD PYTHONUNBUFFERED=1
DATA=$WORK/data; MODEL=$WORK/model; CACHE=$WORK/latents
LIMIT=${LIMIT:-400}
META_STEPS=${META_STEPS:-3000}; META_ARGS=${META_ARGS:-}
ABL_DIR=${ABL_DIR:-$WORK/ablations}; RES=$ABL_DIR/results
ABL_STEPS=${ABL_STEPS:-3000}; ABL_BATCH=${ABL_BATCH:-128}; ABL_SEED=${ABL_SEED:-0}
ABL_ARGS=${ABL_ARGS:-}; ABL_CKPT=${ABL_CKPT:-250}
ABL_META_STEPS=${ABL_META_STEPS:-$META_STEPS}; ABL_META_ARGS=${ABL_META_ARGS:-}
ABL_FRAMES=${ABL_FRAMES:-1 2 4}; ABL_FRAMES_METADATA=${ABL_FRAMES_METADATA:-0}
ABL_HORIZONS=${ABL_HORIZONS:-1 2 4 8 16 32 64}
ABL_EPISODES=${ABL_EPISODES:-50}; ABL_STARTS=${ABL_STARTS:-8}
ABL_BENCH_BATCH=${ABL_BENCH_BATCH:-64}; ABL_SPLIT=${ABL_SPLIT:-test}
ABL_DEVICE=${ABL_DEVICE:-cuda}; ABL_DEADLINE=${ABL_DEADLINE:-0}
ABL_JOBS=${ABL_JOBS:-1}; read -r -a gpus <<<"${ABL_GPUS:-}"
[[ $ABL_JOBS =~ ^[1-9][0-9]*$ ]] || { echo "ABL_JOBS must be a positive integer" >&2; exit 2; }
MIN_LEFT=30  # seconds: no training is started with less than this left before the deadline
export ENV_ID ABL_STEPS ABL_BATCH ABL_SEED ABL_ARGS ABL_META_STEPS ABL_META_ARGS ABL_FRAMES \
  ABL_FRAMES_METADATA ABL_HORIZONS ABL_EPISODES ABL_STARTS ABL_SPLIT ABL_DEVICE  # settings.json

log() { echo "[$(date +%T)] $*"; }
die() { echo "ablations.sh: error: $*" >&2; exit 1; }
# a command, or in a dry run the command printed
run() {
  if [ "$DRY" != 1 ]; then "$@"; return; fi
  echo "+ $*"
}
# a training command for at most N seconds; a timeout is not a failure (it resumes)
budget() { local s=$1; shift; timeout --signal=TERM "$s" "$@" || [ $? -eq 124 ]; }
# progress bars out; the whole log kept in $1, its tail shown
filter() {
  if [ "$DRY" = 1 ]; then cat; return; fi
  mkdir -p "$(dirname "$1")"
  tr '\r' '\n' | { grep -v -E "it/s|s/it|start/s|s/start" || true; } | tee -a "$1" | tail -"${2:-12}"
}
# seconds to the deadline (a day when there is none)
deadline_left() {
  if [ "$ABL_DEADLINE" -gt 0 ]; then echo $((ABL_DEADLINE - SECONDS)); else echo 86400; fi
}
# seconds the next training may run: min(LIMIT, time to the deadline); fails when too little
time_left() {
  local left; left=$(deadline_left)
  [ "$left" -le "$LIMIT" ] || left=$LIMIT
  [ "$left" -ge "$MIN_LEFT" ] && echo "$left"
}
# whether eval JSON $1 exists and was written after $2 steps
finished() {
  [ -e "$1" ] && python3 -c 'import json, sys
sys.exit(json.load(open(sys.argv[1])).get("steps") != int(sys.argv[2]))' "$1" "$2"
}
has_component() {  # folder component
  [ -e "$1/config.json" ] && python3 -c 'import json, sys
sys.exit(sys.argv[2] not in json.load(open(sys.argv[1])).get("components", {}))' \
    "$1/config.json" "$2"
}

# -- what the groups are made of -----------------------------------------------------------
fm=nometa; if [ "$ABL_FRAMES_METADATA" = 1 ]; then fm=meta; fi
max_t=1; for T in $ABL_FRAMES; do if [ "$T" -gt "$max_t" ]; then max_t=$T; fi; done
variants_of() {
  case $1 in
    metadata) echo meta-T1-future-embedding nometa-T1-future-embedding ;;
    frames) for T in $ABL_FRAMES; do echo "$fm-T$T-future-embedding $fm-T$T-pastfuture-embedding"
            done ;;
    actions) for T in $ABL_FRAMES; do echo "$fm-T$T-future-embedding $fm-T$T-future-onehot"; done ;;
  esac
}
# train_denoiser.py flags of a variant name
variant_flags() {
  local m T ctx enc rest
  IFS=- read -r m T ctx enc rest <<<"$1"
  [ "$m" = meta ] && echo -n "--metadata " || echo -n "--no-metadata "
  [ "$ctx" = pastfuture ] && ctx=past+future
  echo "--frames-per-call ${T#T} --action-context $ctx --action-encoding $enc"
}
horizons_of() {
  if [ "$1" = metadata ]; then echo "$ABL_HORIZONS"; return; fi
  printf '%s\n' $ABL_HORIZONS $(seq 1 "$max_t") | sort -nu | tr '\n' ' '
}

# -- prerequisites -------------------------------------------------------------------------
needs_denoiser=0; needs_gphi=0
for g in "${groups[@]}"; do
  case $g in
    gphi) ;;
    *) needs_denoiser=1
       for v in $(variants_of "$g"); do [ "${v%%-*}" = meta ] && needs_gphi=1; done ;;
  esac
done
[ -e "$CACHE/info.json" ] || die "no latent cache in $CACHE (no info.json): run \
training/gpu_pipeline.sh $ENV_ID setup record vae latents first (WORK=${WORK%/"$ENV_ID"})"
if [ "$needs_denoiser" = 1 ]; then
  [ -e "$DATA/index.json" ] || die "no dataset in $DATA (no index.json): run \
training/gpu_pipeline.sh $ENV_ID record first"
  has_component "$MODEL" vae || die "no VAE in $MODEL: run training/gpu_pipeline.sh \
$ENV_ID vae latents first"
fi

mkdir -p "$ABL_DIR" "$RES" "$OUT"
incomplete=()

# -- at exit, always: the results to $OUT (two files) --------------------------------------
bundle() {
  local rc=$?
  trap - EXIT
  if [ "$DRY" = 1 ]; then
    echo "+ (bundle $RES into $OUT/ablations.tgz and write $OUT/ABLATIONS.md)"; exit "$rc"
  fi
  mkdir -p "$RES/denoiser" "$RES/gphi"
  for d in "$ABL_DIR"/*/; do
    if [ -e "$d/denoiser_eval.json" ]; then
      cp "$d/denoiser_eval.json" "$RES/denoiser/$(basename "$d").json"
    fi
  done
  for f in "$ABL_DIR"/gphi/*_eval.json; do if [ -e "$f" ]; then cp "$f" "$RES/gphi/"; fi; done
  python3 - "$RES/settings.json" <<'EOF' || true
import datetime, json, os, shutil, subprocess, sys
keys = ("ENV_ID ABL_STEPS ABL_BATCH ABL_SEED ABL_ARGS ABL_META_STEPS ABL_META_ARGS ABL_FRAMES "
        "ABL_FRAMES_METADATA ABL_HORIZONS ABL_EPISODES ABL_STARTS ABL_SPLIT ABL_DEVICE").split()
settings = {k.lower(): os.environ.get(k, "") for k in keys}
gpu = None
if shutil.which("nvidia-smi"):
    q = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                       capture_output=True, text=True)
    gpu = q.stdout.strip().splitlines()[0] if q.returncode == 0 and q.stdout.strip() else None
settings.update(date=datetime.date.today().isoformat(), gpu=gpu, cpus=os.cpu_count())
with open(sys.argv[1], "w") as f:
    json.dump(settings, f, indent=1)
EOF
  tar czf "$OUT/ablations.tgz" -C "$ABL_DIR" results || true
  python3 benchmarks/ablation_report.py --results "$RES" --out "$OUT/ABLATIONS.md" || true
  ls -la "$OUT"
  exit "$rc"
}
trap bundle EXIT
trap 'exit 143' TERM; trap 'exit 130' INT  # so that a stopped call still bundles

# -- the shared g_phi ----------------------------------------------------------------------
# A g_phi is finished when the model folder has one and no unfinished training of it.
gphi_ready() {
  has_component "$MODEL" metadata \
    && { [ ! -d "$MODEL/train/metadata" ] || [ -e "$MODEL/metadata_eval.json" ]; }
}
if [ "$needs_gphi" = 1 ] && ! gphi_ready; then
  log "$MODEL has no finished g_phi, which the metadata-conditioned variants share: training" \
    "it ($META_STEPS steps, as gpu_pipeline.sh's metadata stage)"
  if left=$(time_left); then
    run budget "$left" python3 training/train_metadata.py --cache "$CACHE" --out "$MODEL" \
      --steps "$META_STEPS" --checkpoint-every 500 $META_ARGS 2>&1 \
      | filter "$MODEL/train/metadata.log" 15 || die "training g_phi failed (log above)"
  fi
  [ "$DRY" = 1 ] || gphi_ready || { log "g_phi unfinished: run again to resume"; exit 75; }
fi

# -- denoiser variants ---------------------------------------------------------------------
new_folder() {  # the main model's config.json (VAE and g_phi only) and their weights
  python3 - "$MODEL" "$1" <<'EOF'
import json, shutil, sys
from pathlib import Path
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
config = json.loads((src / "config.json").read_text())
config["components"] = {k: v for k, v in config.get("components", {}).items()
                        if k in ("vae", "metadata")}
dst.mkdir(parents=True, exist_ok=True)
for name in config["components"]:
    shutil.copy2(src / f"{name}.safetensors", dst / f"{name}.safetensors")
tmp = dst / ".tmp-config.json"
tmp.write_text(json.dumps(config, indent=1))
tmp.replace(dst / "config.json")
EOF
}

train_variant() {  # fails when the variant is not finished
  local v=$1 dir=$ABL_DIR/$1 left
  if finished "$dir/denoiser_eval.json" "$ABL_STEPS"; then
    log "variant $v: trained ($ABL_STEPS steps)"; return 0
  fi
  left=$(time_left) || { log "variant $v: not started, past the deadline"; return 1; }
  log "variant $v: training ($ABL_STEPS steps, at most $left s)"
  [ -e "$dir/config.json" ] || run new_folder "$dir"
  # shellcheck disable=SC2046  # word splitting of the flags is wanted
  run budget "$left" python3 training/train_denoiser.py --cache "$CACHE" --out "$dir" \
    --stage cond --base none $(variant_flags "$v") --steps "$ABL_STEPS" \
    --batch-size "$ABL_BATCH" --seed "$ABL_SEED" --checkpoint-every "$ABL_CKPT" \
    --device "$ABL_DEVICE" $ABL_ARGS 2>&1 | filter "$dir/train.log" \
    || die "variant $v: training failed (log: $dir/train.log)"
  [ "$DRY" = 1 ] || finished "$dir/denoiser_eval.json" "$ABL_STEPS" \
    || { log "variant $v: unfinished (resumes from its checkpoint next time)"; return 1; }
}


bench_group() {
  local g=$1 json=$RES/$1.json dirs=() v fresh=1 left rc=0
  for v in $(variants_of "$g"); do
    dirs+=("$ABL_DIR/$v")
    [ -e "$json" ] && [ "$json" -nt "$ABL_DIR/$v/denoiser_eval.json" ] || fresh=0
  done
  if [ "$fresh" = 1 ]; then log "group $g: $json is up to date"; return 0; fi
  left=$(deadline_left)
  [ "$left" -ge "$MIN_LEFT" ] || { log "group $g: rollouts not started, past the deadline"; return 1; }
  log "group $g: paired rollouts of ${#dirs[@]} variants and copy-last"
  run rm -f "$json"  # stale: a variant finished after it
  # shellcheck disable=SC2046
  run timeout --signal=TERM "$left" python3 benchmarks/paired_rollout.py --per-start \
    --env "$ENV_ID" --data "$DATA" \
    --split "$ABL_SPLIT" --predictor "${dirs[@]}" --episodes "$ABL_EPISODES" \
    --starts-per-episode "$ABL_STARTS" --batch-size "$ABL_BENCH_BATCH" \
    --horizons $(horizons_of "$g") --device "$ABL_DEVICE" --seed "$ABL_SEED" --json "$json" \
    2>&1 | filter "$RES/$g.log" 40 || rc=$?
  if [ "$rc" = 124 ]; then log "group $g: rollouts stopped at the deadline"; return 1; fi
  [ "$rc" = 0 ] || die "group $g: the paired rollouts failed (log: $RES/$g.log)"
}

train_gphi() {  # fails when a g_phi variant is not finished
  local kind=$1 c=metadata_$1 dir=$ABL_DIR/gphi left
  if finished "$dir/${c}_eval.json" "$ABL_META_STEPS"; then
    log "g_phi $kind: trained ($ABL_META_STEPS steps)"; return 0
  fi
  left=$(time_left) || { log "g_phi $kind: not started, past the deadline"; return 1; }
  log "g_phi $kind: training ($ABL_META_STEPS steps, at most $left s)"
  run budget "$left" python3 training/train_metadata.py --cache "$CACHE" --out "$dir" \
    --kind "$kind" --component "$c" --steps "$ABL_META_STEPS" --seed "$ABL_SEED" \
    --checkpoint-every 500 --device "$ABL_DEVICE" $ABL_META_ARGS 2>&1 \
    | filter "$dir/$c.log" 15 || die "g_phi $kind: training failed (log: $dir/$c.log)"
  [ "$DRY" = 1 ] || finished "$dir/${c}_eval.json" "$ABL_META_STEPS" \
    || { log "g_phi $kind: unfinished (resumes from its checkpoint next time)"; return 1; }
}

# -- parallel training (ABL_JOBS > 1): every variant once, N at a time ----------------------
# A job that fails or runs out of time leaves its variant unfinished; the loop below then
# tries it once more on its own (or reports it unfinished).
if [ "$ABL_JOBS" -gt 1 ]; then
  todo=()
  for g in "${groups[@]}"; do
    if [ "$g" = gphi ]; then todo+=(gphi); continue; fi  # one job: its kinds share a folder
    for v in $(variants_of "$g"); do
      [[ " ${todo[*]} " == *" $v "* ]] || todo+=("$v")
    done
  done
  log "training ${#todo[@]} jobs, $ABL_JOBS at a time${ABL_GPUS:+ on GPUs $ABL_GPUS}"
  i=0
  for job in "${todo[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$ABL_JOBS" ]; do wait -n || true; done
    gpu=""; [ ${#gpus[@]} -eq 0 ] || gpu=${gpus[$((i % ${#gpus[@]}))]}
    log "job $((i + 1))/${#todo[@]}: $job${gpu:+ on GPU $gpu}"
    (
      [ -z "$gpu" ] || export CUDA_VISIBLE_DEVICES=$gpu
      if [ "$job" = gphi ]; then
        for kind in gru lstm transformer; do train_gphi "$kind" || true; done
      else
        train_variant "$job" || true
      fi
    ) &
    i=$((i + 1))
  done
  wait
  log "parallel training done"
fi

for g in "${groups[@]}"; do
  log "group $g"
  ok=1
  if [ "$g" = gphi ]; then
    for kind in gru lstm transformer; do train_gphi "$kind" || ok=0; done
  else
    for v in $(variants_of "$g"); do train_variant "$v" || ok=0; done
    if [ "$ok" = 1 ]; then bench_group "$g" || ok=0; fi
  fi
  [ "$ok" = 1 ] || incomplete+=("$g")
done

if [ ${#incomplete[@]} -gt 0 ]; then
  log "unfinished groups: ${incomplete[*]}; run the same command again to resume"
  exit 75
fi
log "done: ${groups[*]}"
