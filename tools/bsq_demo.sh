#!/usr/bin/env bash
# bsq_demo.sh - the BSQ demonstration: train a small tokenizer on the espeak-ng corpus, evaluate it
# on the held-out speakers against the baselines, encode the corpus, analyze and BPE the codes.
#
#     tools/make_bsq_corpus.sh                      # bench-data/bsq-corpus (720 clips, 18 voices)
#     tools/bsq_demo.sh STEPS INV_TEMPERATURE [RUN]  # e.g. tools/bsq_demo.sh 400 100
#
# Needs target/release/audiotok (cargo build --release -p audiotok-cli). Threads: RAYON_NUM_THREADS
# (default 2). Writes RUN (default bench-data/bsq-run-tauT): the run folder, eval.json, tokens/,
# analyze.json, bpe.json.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STEPS=${1:?steps}
TAU=${2:?inverse temperature}
RUN=${3:-$ROOT/bench-data/bsq-run-tau$TAU}
BIN=${BIN:-$ROOT/target/release/audiotok}
CORPUS=${CORPUS:-$ROOT/bench-data/bsq-corpus}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}
mkdir -p "$RUN"
cat > "$RUN.config.json" <<JSON
{"model": {"n_mels": 128, "crop_frames": 1024, "freq_patch": 16, "time_patch": 16, "width": 128,
           "encoder_depth": 2, "decoder_depth": 2, "heads": 4, "mlp_ratio": 4.0, "conformer": true,
           "conv_kernel": 7, "head_dim": 256, "bits": 18, "group_size": 9,
           "inv_temperature": $TAU, "beta": 0.25, "gamma0": 1.0, "gamma": 1.0, "zeta": 1.0},
 "optim": {"lr": 0.001, "min_lr_ratio": 0.1, "warmup_steps": 30, "weight_decay": 0.05,
           "grad_clip": 1.0, "ema_decay": 0.99},
 "data": {"crop_frames": 256, "batch_size": 8, "val_fraction": 0.12, "split": "speaker",
          "val_crops": 32, "time_masks": 0, "freq_masks": 0, "jobs": 2},
 "total_steps": $STEPS, "bsq_weight": 0.1, "checkpoint_every": 100, "keep_checkpoints": 1,
 "log_every": 10, "val_every": 50, "seed": 1}
JSON
time "$BIN" bsq train --config "$RUN.config.json" --data "$CORPUS/manifest.jsonl" --out "$RUN/train" --keep-going
# The held-out speakers' clips, as a manifest.
python3 - "$RUN/train/data.json" "$RUN/val.jsonl" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
with open(sys.argv[2], "w") as f:
    for p in d["val"]:
        f.write(json.dumps({"path": p}) + "\n")
print(len(d["train"]), "training clips,", len(d["val"]), "validation clips")
PY
time "$BIN" bsq eval --model "$RUN/train" --data "$RUN/val.jsonl" --json > "$RUN/eval.json"
"$BIN" bsq eval --model "$RUN/train" --data "$RUN/val.jsonl"
time "$BIN" bsq encode --model "$RUN/train" --input "$CORPUS/wav" --output "$RUN/tokens" --json > "$RUN/encode.json"
"$BIN" bsq encode --model "$RUN/train" --input "$CORPUS/wav" --output "$RUN/tokens0" --no-group-scales
"$BIN" analyze "$RUN/tokens" --codebook-size 262144 --json "$RUN/analyze.json" | tail -12
"$BIN" bpe train --input "$RUN/tokens0" --merges 2000 --out "$RUN/bpe.json" 2>&1 | tail -3 || true
"$BIN" bpe inspect --model "$RUN/bpe.json" --input "$RUN/tokens0" 2>&1 | tail -6 || true
