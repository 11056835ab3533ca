#!/usr/bin/env bash
# The tree a device call sends to the GPU host (git's tracked files, untracked files git does
# not ignore, and the carried paths) is capped at 64 MiB; the shipped models alone are larger.
# A run needs only its own game's model (and Breakout's, whose VAE starts the other Atari
# games' VAEs: train_vae --init-from), shipped (neuralgym/shipped/<game>/) or a committed
# checkpoint not yet shipped (checkpoints/<game>/), so before the device calls untrack the
# others, in the index only, and track them again afterwards:
#
#   bash training/device_tree.sh keep breakout pong   # every other shipped model leaves the tree
#   bash training/device_tree.sh keep checkpoints/pong  # only that folder of the game stays
#   bash training/device_tree.sh size .whl            # MiB that would travel, with these carries
#   bash training/device_tree.sh restore              # all of them tracked again
#
# `keep` also leaves out benchmarks/results (earlier runs' results, which no stage reads; with
# the carried wheels they push the tree past the cap).
# `keep` runs `git rm -r --cached` on the other games' folders of both kinds (their files
# stay on disk) and lists them in .git/info/exclude, so they are neither tracked nor untracked
# for the copy. Nothing is committed; but a `git commit` made while they are left out would
# commit their deletion, so `restore` before committing. `keep` refuses to run with other
# changes staged.
set -euo pipefail
cd "$(dirname "$(realpath "$0")")/.."
exclude=.git/info/exclude
folders="neuralgym/shipped checkpoints"  # the model folders: shipped/<game>, checkpoints/<game>
results=benchmarks/results  # left out too: no stage reads earlier runs' results
begin="# device_tree.sh keep: begin"; end="# device_tree.sh keep: end"

drop_block() {  # remove our lines from .git/info/exclude
  [ -e "$exclude" ] || return 0
  sed -i "/^$begin\$/,/^$end\$/d" "$exclude"
}

case ${1:-} in
  keep)
    shift
    [ $# -gt 0 ] || { echo "device_tree.sh keep: name the games to keep, e.g. breakout" >&2; exit 2; }
    for g in "$@"; do
      case $g in
        shipped/*|checkpoints/*)  # one folder of the game, not both
          [ -d "neuralgym/$g" ] || [ -d "$g" ] \
            || { echo "device_tree.sh: no folder $g (neuralgym/shipped/GAME or checkpoints/GAME)" >&2; exit 2; } ;;
        *) [ -d "neuralgym/shipped/$g" ] || [ -d "checkpoints/$g" ] \
             || { echo "device_tree.sh: no neuralgym/shipped/$g or checkpoints/$g" >&2; exit 2; } ;;
      esac
    done
    if ! git diff --cached --quiet -- . ':!neuralgym/shipped' ':!checkpoints' ":!$results"; then
      echo "device_tree.sh: other changes are staged; commit or unstage them first" >&2; exit 2
    fi
    git reset -q -- $folders $results  # a previous keep, undone first
    drop_block
    mkdir -p "$(dirname "$exclude")"
    echo "$begin" >> "$exclude"
    for dir in neuralgym/shipped/*/ checkpoints/*/; do
      [ -d "$dir" ] || continue
      dir=${dir%/}; g=$(basename "$dir")
      if [[ " $* " == *" $g "* || " $* " == *" ${dir#neuralgym/} "* ]] \
        || [ -z "$(git ls-files -- "$dir")" ]; then continue; fi
      git rm -r -q --cached "$dir"
      echo "/$dir/" >> "$exclude"
      echo "left out of the tree: $dir"
    done
    if [ -n "$(git ls-files -- "$results")" ]; then
      git rm -r -q --cached "$results"
      echo "/$results/" >> "$exclude"
      echo "left out of the tree: $results"
    fi
    echo "$end" >> "$exclude"
    echo "restore with: bash training/device_tree.sh restore (before any commit)"
    ;;
  restore)
    drop_block
    git reset -q -- $folders $results
    echo "every shipped model, checkpoint and result is tracked again"
    ;;
  size)
    shift
    tree=$({ git ls-files -z; git ls-files -z --others --exclude-standard; } \
      | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{s += $1} END {printf "%d", s}')
    carried=0
    for p in "$@"; do carried=$((carried + $(du -sb "$p" | cut -f1))); done
    awk -v t="$tree" -v c="$carried" 'BEGIN {printf "tree %.1f MiB + carried %.1f MiB = %.1f MiB (%d bytes; limit 64 MiB)\n", t/2^20, c/2^20, (t+c)/2^20, t+c}'
    ;;
  *) echo "usage: device_tree.sh keep GAME... | restore | size [CARRIED_PATH...]" >&2; exit 2 ;;
esac
