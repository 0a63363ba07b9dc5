#!/usr/bin/env bash
# Proof of learning on one GPU, in one command of at most 10 minutes:
#   1. render the proof dataset (python -m training.prepare_proof; held-out test scenes and cameras),
#   2. stage I of the `small` model (training/configs/proof_stage1.yaml) with a wall-clock budget,
#   3. stage II twice, in parallel on the same GPU, from the same stage-I model: with camera control
#      (proof_stage2.yaml) and the camera ablation (proof_stage2_nocam.yaml), same budget,
#   4. copy to $OUT (each file under 16 MiB): the two standalone models (weights only, every network:
#      what `python -m dynascene_core.generate --dynascene` and the ComfyUI loaders take), the three
#      training checkpoints as tar files (weights + optimizer state + RNG: resumable) and the logs,
#   5. measure what the camera is worth to the camera model's loss (benchmarks/camera_use.py, seconds on a
#      GPU; OUT/camera_use/camera_use.json and the summary): a first reading before the CPU evaluation.
# The logs are written straight into $OUT/logs as the run goes, the latest checkpoints are copied to $OUT every
# SAVE_EVERY seconds (default 60), and every training command has its own timeout, so a run stopped by the
# device's time limit still returns what it did (a stage-II checkpoint becomes a standalone model with
# `python -m dynascene_core.checkpoints merge`, see BENCHMARKS.md).
# Usage (repo root):  OUT=/path/to/out bash benchmarks/train_proof.sh
# Budgets (seconds of training loop, after start-up): STAGE1_S (default 250), STAGE2_S (default 215); with GRACE
# (default 35) the whole run took 529–542 s on an H200 with 16 cores, inside the 10-minute limit of one command.
# TRAIN_SCENES (default 400) sizes the dataset; PROOF_CPU=1 allows a run without a GPU (a reduced dry run, with
# e.g. EXTRA='train.mixed_precision="no"' appended to every training command).
# Longer training, spread over several commands: RESUME=DIR continues stage I from an earlier run's OUT folder
# (its stage1_checkpoint.tar: weights, optimizer, schedule, step) for STAGE1_S more seconds; STAGE1_S=0 trains
# no more stage I, and stage II then continues the stage-II checkpoints DIR holds (trained on that same stage-I
# model) or starts from that model; STAGE2_S=0 stops after stage I. E.g.
#   OUT=run1 bash benchmarks/train_proof.sh                                  # as above
#   RESUME=run1 OUT=run2 STAGE1_S=520 STAGE2_S=0 bash benchmarks/train_proof.sh   # stage I, 520 s more
#   RESUME=run2 OUT=run3 STAGE1_S=0 STAGE2_S=480 bash benchmarks/train_proof.sh   # both stage II runs, from the new stage I
#   RESUME=run3 OUT=run4 STAGE1_S=0 STAGE2_S=480 bash benchmarks/train_proof.sh   # both stage II runs, 480 s more each
# STAGE1_MODEL=FILE is a stage-I model given as weights instead of a stage-I checkpoint: with STAGE1_S=0 stage II
# starts from it (RESUME then only brings stage-II checkpoints trained on that same model); with STAGE1_S > 0 stage I
# continues from its weights for STAGE1_S seconds with a fresh optimizer (no RESUME). E.g. the stage-I networks of a
# standalone model (stage II leaves them untouched):
#   python -m dynascene_core.checkpoints merge --dynascene MODEL --groups denoiser_spatial reference_net \
#     reference_net_tail image_encoder --out stage1.safetensors
#   STAGE1_MODEL=stage1.safetensors OUT=run1 STAGE1_S=0 STAGE2_S=480 bash benchmarks/train_proof.sh
#   STAGE1_MODEL=stage1.safetensors OUT=run1 STAGE1_S=520 STAGE2_S=0 bash benchmarks/train_proof.sh   # more stage I
# WARM_START=DIR (with STAGE1_MODEL, without RESUME) starts both stage-II runs from the weights of DIR's stage-II
# checkpoints with a fresh optimizer at step 0: for runs that train more groups than those checkpoints did (e.g.
# EXTRA='train.also_train=[denoiser_spatial]'), or whose stage-I model is newer than the one those checkpoints were
# trained on; their optimizer state cannot carry over. Later commands RESUME as usual.
# GENERATE_SPLITS="val test" (default none) then generates those held-out splits with both new models on the GPU
# (benchmarks/eval_proof.py --only generate, one job per split in parallel, GENERATE_SEEDS default "0 1 2",
# GENERATE_CLIPS default 8, DPM-Solver++ 15 steps, GENERATE_ARGS default '--camera-guidance 4 --camera-guidance-end 0.5') into
# OUT/generated_<split>.tar, for `eval_proof.py --only evaluate` on any machine (their folders are too deep to
# come back from the device as they are). Generating needs imageio-ffmpeg and pymatting too (the composite).
# Needs torch with CUDA, diffusers, accelerate, safetensors, transformers, opencv, pyyaml, pillow.
set -euo pipefail
OUT=${OUT:?set OUT to the folder that receives the results}
WORK=${WORK:-/tmp/dynascene_proof}
STAGE1_S=${STAGE1_S:-250}
STAGE2_S=${STAGE2_S:-215}
TRAIN_SCENES=${TRAIN_SCENES:-400}
cores=$(python -c "import os; print(len(os.sched_getaffinity(0)))")  # not nproc: it obeys OMP_NUM_THREADS
WORKERS=${WORKERS:-$(( cores > 2 ? cores - 2 : 1 ))}
read -r -a extra <<< "${EXTRA:-}"
RESUME=${RESUME:-}
STAGE1_MODEL=${STAGE1_MODEL:+$(realpath -m "$STAGE1_MODEL")}
fail() { echo "error: $*" >&2; exit 2; }
[[ "$STAGE1_S" =~ ^[0-9]+$ && "$STAGE2_S" =~ ^[0-9]+$ ]] || fail "STAGE1_S and STAGE2_S must be whole seconds, got '$STAGE1_S' and '$STAGE2_S'"
if [ -n "$STAGE1_MODEL" ]; then
  [ -f "$STAGE1_MODEL" ] || fail "STAGE1_MODEL=$STAGE1_MODEL is not a file (expected a stage-I model's .safetensors)"
  if [ "$STAGE1_S" = 0 ]; then
    [ "$STAGE2_S" -gt 0 ] || fail "STAGE1_MODEL with STAGE1_S=0 starts stage II from that model: set STAGE2_S > 0"
  else
    [ -z "${RESUME:-}" ] || fail "STAGE1_MODEL with STAGE1_S > 0 continues stage I from that model's weights: drop RESUME (or set STAGE1_S=0 to resume stage II)"
  fi
fi
WARM_START=${WARM_START:-}
GENERATE_SPLITS=${GENERATE_SPLITS:-}
GENERATE_ARGS=${GENERATE_ARGS---camera-guidance 4 --camera-guidance-end 0.5}  # set but empty: no camera guidance
for split in $GENERATE_SPLITS; do
  [[ "$split" =~ ^(val|test)$ ]] || fail "GENERATE_SPLITS must name held-out splits (val, test), got '$split'"
done
if [ -n "$WARM_START" ]; then
  [ -n "$STAGE1_MODEL" ] && [ -z "$RESUME" ] || fail "WARM_START needs STAGE1_MODEL (the stage-I model to start stage II on) and no RESUME"
  for run in cam nocam; do
    [ -f "$WARM_START/stage2_${run}_checkpoint.tar" ] || fail "WARM_START=$WARM_START holds no stage2_${run}_checkpoint.tar (expected an earlier run's OUT folder)"
  done
fi
if [ -n "$RESUME" ]; then
  [ -n "$STAGE1_MODEL" ] || [ -f "$RESUME/stage1_checkpoint.tar" ] || fail "RESUME=$RESUME holds no stage1_checkpoint.tar (expected an earlier run's OUT folder)"
  [ "$(realpath "$RESUME")" != "$(realpath -m "$OUT")" ] || fail "OUT must not be RESUME's folder: the new run would overwrite the checkpoints it resumes from"
elif [ "$STAGE1_S" = 0 ] && [ -z "$STAGE1_MODEL" ]; then
  fail "STAGE1_S=0 (no stage I training) needs RESUME=<an earlier run's OUT folder> holding the stage-I checkpoint, or STAGE1_MODEL"
fi
start=$(date +%s)
python -c "import os, torch, diffusers, accelerate; assert torch.cuda.is_available() or os.environ.get('PROOF_CPU')" \
  || { echo "error: needs torch with CUDA (or PROOF_CPU=1), diffusers and accelerate" >&2; exit 2; }
rm -rf "$WORK"; mkdir -p "$WORK" "$OUT/logs"
LOGS="$OUT/logs"
log() { echo "[$(( $(date +%s) - start )) s] $*" | tee -a "$LOGS/summary.txt"; }
GRACE=${GRACE:-35}  # seconds a training command may take beyond its budget (start-up, final checkpoint)
save_checkpoint() {  # the run's latest resumable checkpoint as OUT/<run>_checkpoint.tar, renamed into place last
  # from a part file of this process's own (a copier stopped mid-tar cannot mix its bytes into the final copy)
  local part="$OUT/$1_checkpoint.tar.part$BASHPID" ckpt
  ckpt=$(ls -d "$WORK/$1"/checkpoints/step-* 2>/dev/null | tail -1) || true
  [ -n "$ckpt" ] || return 1
  tar -C "$(dirname "$ckpt")" -cf "$part" "$(basename "$ckpt")" && mv "$part" "$OUT/$1_checkpoint.tar" \
    || { rm -f "$part"; return 1; }
}
SAVE_EVERY=${SAVE_EVERY:-60}  # seconds between copies of the latest checkpoints to OUT while training runs
keep_saving() {  # in the background: a run the device stops early still returns its last checkpoints (train.py
  while sleep "$SAVE_EVERY"; do  # writes one every checkpoint.every steps); a failed copy is retried next time
    for run in "$@"; do save_checkpoint "$run" 2>/dev/null || true; done
  done
}
stop_saving() { kill "$saver"; wait "$saver" 2>/dev/null || true; rm -f "$OUT"/*_checkpoint.tar.part*; }

log "dataset: rendering with $WORKERS processes"
python -m training.prepare_proof --out "$WORK/data" --workers "$WORKERS" --train-scenes "$TRAIN_SCENES" | tee -a "$LOGS/summary.txt"

common=(data.root="$WORK/data" log.progress_bar=false log.tensorboard=false "${extra[@]}")
mkdir -p "$WORK/stage1/checkpoints"
if [ -n "$STAGE1_MODEL" ]; then
  log "stage I model: $STAGE1_MODEL"
elif [ -n "$RESUME" ]; then  # train.py resumes from the latest checkpoint in its output_dir (checkpoint.resume: auto)
  tar -C "$WORK/stage1/checkpoints" -xf "$RESUME/stage1_checkpoint.tar"
  log "stage I checkpoint from $RESUME: $(basename "$(ls -d "$WORK"/stage1/checkpoints/step-* | tail -1)")"
fi
if [ "$STAGE1_S" -gt 0 ]; then
  log "stage I: ${STAGE1_S} s"
  keep_saving stage1 & saver=$!
  timeout $(( STAGE1_S + GRACE )) python training/train.py --config proof_stage1 "${common[@]}" \
    output_dir="$WORK/stage1" ${STAGE1_MODEL:+"model.init_from=[$STAGE1_MODEL]"} train.max_seconds="$STAGE1_S" \
    data.num_workers="$WORKERS" > "$LOGS/stage1.log" 2>&1 \
    || { rc=$?; stop_saving; tail -30 "$LOGS/stage1.log"; log "stage I failed (exit $rc; 124 = over its time limit)"; exit 1; }
  stop_saving
  tail -1 "$LOGS/stage1.log" | tee -a "$LOGS/summary.txt"
  stage1="$WORK/stage1/dynascene_full.safetensors"
elif [ -n "$STAGE1_MODEL" ]; then
  stage1=$STAGE1_MODEL
else  # a stage-I checkpoint's weights hold every network stage I has (trained from scratch: nothing else to load)
  stage1="$(ls -d "$WORK"/stage1/checkpoints/step-* | tail -1)/dynascene.safetensors"
fi
[ -n "$STAGE1_MODEL" ] && [ "$STAGE1_S" = 0 ] || save_checkpoint stage1  # OUT holds the stage-I checkpoint: the next RESUME
if [ "$STAGE2_S" = 0 ]; then
  log "done (STAGE2_S=0: no stage II)"
  ls -l "$OUT"
  exit 0
fi

half=$(( WORKERS / 2 > 1 ? WORKERS / 2 : 1 ))
log "stage II with camera control and the ablation, in parallel: ${STAGE2_S} s each"
for run in cam nocam; do
  mkdir -p "$WORK/stage2_$run/checkpoints"
  if [ "$STAGE1_S" = 0 ] && [ -f "$RESUME/stage2_${run}_checkpoint.tar" ]; then  # same stage-I model: continue
    tar -C "$WORK/stage2_$run/checkpoints" -xf "$RESUME/stage2_${run}_checkpoint.tar"
    log "stage II $run checkpoint from $RESUME: $(basename "$(ls -d "$WORK/stage2_$run"/checkpoints/step-* | tail -1)")"
  fi
  init=$stage1
  if [ -n "$WARM_START" ]; then  # the checkpoint's weights over the stage-I model; no optimizer state, step 0
    mkdir -p "$WORK/warm_$run"
    tar -C "$WORK/warm_$run" -xf "$WARM_START/stage2_${run}_checkpoint.tar"
    init="$stage1, $(ls -d "$WORK/warm_$run"/step-* | tail -1)/dynascene.safetensors"
    log "stage II $run starts from the weights of $WARM_START's checkpoint ($(basename "$(dirname "${init#*, }")"))"
  fi
  config=proof_stage2; [ "$run" = nocam ] && config=proof_stage2_nocam
  timeout $(( STAGE2_S + GRACE )) python training/train.py --config "$config" "${common[@]}" \
    output_dir="$WORK/stage2_$run" "model.init_from=[$init]" train.max_seconds="$STAGE2_S" \
    data.num_workers="$half" > "$LOGS/stage2_$run.log" 2>&1 &
  eval "pid_$run=$!"
done
keep_saving stage2_cam stage2_nocam & saver=$!
status=0
for run in cam nocam; do
  pid="pid_$run"; wait "${!pid}" || { rc=$?; status=1; log "stage II $run failed (exit $rc; 124 = over its time limit)"; }
done
stop_saving
for run in cam nocam; do
  [ $status = 0 ] || tail -30 "$LOGS/stage2_$run.log"
  tail -1 "$LOGS/stage2_$run.log" | tee -a "$LOGS/summary.txt"
  save_checkpoint "stage2_$run" || true
done
[ $status = 0 ] || exit 1

for run in stage1 stage2_cam stage2_nocam; do  # mean loss of the first and last logged windows
  [ -f "$LOGS/$run.log" ] || continue
  { echo "$run:"; grep -E " step [0-9]+ loss " "$LOGS/$run.log" | sed -n '1p;$p' || true; } | tee -a "$LOGS/summary.txt"
done
cp "$WORK/stage2_cam/dynascene_full.safetensors" "$OUT/dynascene_small.safetensors"
cp "$WORK/stage2_nocam/dynascene_full.safetensors" "$OUT/dynascene_small_nocam.safetensors"
log "camera use of the camera model (benchmarks/camera_use.py: loss with the true / a static / the inverted camera)"
timeout "$([ -n "${PROOF_CPU:-}" ] && echo 600 || echo 60)" python benchmarks/camera_use.py --model "$OUT/dynascene_small.safetensors" --data "$WORK/data" \
  --out "$OUT/camera_use" 2>&1 | tail -8 | tee -a "$LOGS/summary.txt" \
  || log "camera use failed (exit $?); the models are in OUT all the same"
if [ -n "$GENERATE_SPLITS" ]; then
  read -r -a seeds <<< "${GENERATE_SEEDS:-0 1 2}"
  device_args="--device $([ -n "${PROOF_CPU:-}" ] && echo cpu || echo cuda) --dtype float32"
  log "generating the held-out $GENERATE_SPLITS clips with both models, seeds ${seeds[*]}"
  pids=()
  for split in $GENERATE_SPLITS; do
    python benchmarks/eval_proof.py --cam "$OUT/dynascene_small.safetensors" --nocam "$OUT/dynascene_small_nocam.safetensors" \
      --data "$WORK/data" --split "$split" --clips "${GENERATE_CLIPS:-8}" --sampler dpmpp_2m --steps 15 \
      --seed "${seeds[@]}" --only generate --generate-args "$device_args $GENERATE_ARGS" \
      --out "$WORK/generated_$split" > "$LOGS/generate_$split.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || log "a generation job failed (exit $?; see $LOGS/generate_*.log)"; done
  for split in $GENERATE_SPLITS; do
    [ -d "$WORK/generated_$split" ] && tar -C "$WORK" -cf "$OUT/generated_$split.tar" "generated_$split"
  done
fi
log "done"
ls -l "$OUT"
