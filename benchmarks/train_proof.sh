#!/usr/bin/env bash
# Proof of learning on one GPU, in one command of at most 10 minutes:
#   1. render the proof dataset (python -m training.prepare_proof; held-out test scenes and cameras),
#   2. stage I of the `small` model (training/configs/proof_stage1.yaml) with a wall-clock budget,
#   3. stage II twice, in parallel on the same GPU, from the same stage-I model: with camera control
#      (proof_stage2.yaml) and the camera ablation (proof_stage2_nocam.yaml), same budget,
#   4. copy to $OUT (7 files, each under 16 MiB): the two standalone models (weights only, every network:
#      what `python -m dynascene_core.generate --dynascene` and the ComfyUI loaders take), the three
#      training checkpoints as tar files (weights + optimizer state + RNG: resumable), a summary and
#      every logged loss (losses.txt).
# Usage (repo root):  OUT=/path/to/out bash benchmarks/train_proof.sh
# Budgets (seconds of training loop, after start-up): STAGE1_S (default 150), STAGE2_S (default 240).
# TRAIN_SCENES (default 240) sizes the dataset; PROOF_CPU=1 allows a run without a GPU (a reduced dry run, with
# e.g. EXTRA='train.mixed_precision="no"' appended to every training command).
# Needs torch with CUDA, diffusers, accelerate, safetensors, transformers, opencv, pyyaml, pillow.
set -euo pipefail
OUT=${OUT:?set OUT to the folder that receives the results}
WORK=${WORK:-/tmp/dynascene_proof}
STAGE1_S=${STAGE1_S:-150}
STAGE2_S=${STAGE2_S:-240}
TRAIN_SCENES=${TRAIN_SCENES:-240}
WORKERS=${WORKERS:-$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))}
read -r -a extra <<< "${EXTRA:-}"
start=$(date +%s)
python -c "import os, torch, diffusers, accelerate; assert torch.cuda.is_available() or os.environ.get('PROOF_CPU')" \
  || { echo "error: needs torch with CUDA (or PROOF_CPU=1), diffusers and accelerate" >&2; exit 2; }
rm -rf "$WORK"; mkdir -p "$WORK" "$OUT"
log() { echo "[$(( $(date +%s) - start )) s] $*" | tee -a "$WORK/summary.txt"; }

log "dataset: rendering with $WORKERS processes"
python -m training.prepare_proof --out "$WORK/data" --workers "$WORKERS" --train-scenes "$TRAIN_SCENES" | tee -a "$WORK/summary.txt"

common=(data.root="$WORK/data" log.progress_bar=false log.tensorboard=false "${extra[@]}")
log "stage I: ${STAGE1_S} s"
python training/train.py --config proof_stage1 "${common[@]}" output_dir="$WORK/stage1" \
  train.max_seconds="$STAGE1_S" data.num_workers="$WORKERS" > "$WORK/stage1.log" 2>&1 \
  || { tail -30 "$WORK/stage1.log"; exit 1; }
tail -1 "$WORK/stage1.log" | tee -a "$WORK/summary.txt"

half=$(( WORKERS / 2 > 1 ? WORKERS / 2 : 1 ))
stage1="$WORK/stage1/dynascene_full.safetensors"
log "stage II with camera control and the ablation, in parallel: ${STAGE2_S} s each"
for run in cam nocam; do
  config=proof_stage2; [ "$run" = nocam ] && config=proof_stage2_nocam
  python training/train.py --config "$config" "${common[@]}" output_dir="$WORK/stage2_$run" \
    "model.init_from=[$stage1]" train.max_seconds="$STAGE2_S" data.num_workers="$half" \
    > "$WORK/stage2_$run.log" 2>&1 &
  eval "pid_$run=$!"
done
status=0
wait "$pid_cam" || status=1
wait "$pid_nocam" || status=1
for run in cam nocam; do
  [ $status = 0 ] || tail -30 "$WORK/stage2_$run.log"
  tail -1 "$WORK/stage2_$run.log" | tee -a "$WORK/summary.txt"
done
[ $status = 0 ] || exit 1

for run in stage1 stage2_cam stage2_nocam; do  # mean loss of the first and last logged windows
  { echo "$run:"; grep -E " step [0-9]+ loss " "$WORK/$run.log" | sed -n '1p;$p' || true; } | tee -a "$WORK/summary.txt"
  grep -E " step [0-9]+ loss " "$WORK/$run.log" | sed "s/^/$run /" >> "$WORK/losses.txt" || true
done
for run in stage1 stage2_cam stage2_nocam; do
  ckpt=$(ls -d "$WORK/$run"/checkpoints/step-* | tail -1)
  tar -C "$(dirname "$ckpt")" -cf "$OUT/${run}_checkpoint.tar" "$(basename "$ckpt")"
done
cp "$WORK/stage2_cam/dynascene_full.safetensors" "$OUT/dynascene_small.safetensors"
cp "$WORK/stage2_nocam/dynascene_full.safetensors" "$OUT/dynascene_small_nocam.safetensors"
log "done"
cp "$WORK/summary.txt" "$OUT/summary.txt"
cp "$WORK/losses.txt" "$OUT/losses.txt" 2>/dev/null || true
ls -l "$OUT"
