#!/usr/bin/env bash
# Discrete tokens the project makes itself, analysed and BPE-trained with every variant
# (issue: token store, statistics and audio BPE, "Data").
#
#   tools/codec_tokens_demo.sh [CLIPS]      (default 120 clips, about 9 minutes of speech)
#
# Needs espeak-ng and sox, `cargo build --release -p audiotok-cli`, and the published-size SNAC
# 24 kHz configuration with weights initialised by the reference package at a fixed seed:
#   python3 -m venv .venv-snac && .venv-snac/bin/pip install -r tools/requirements-snac.txt
#   .venv-snac/bin/python tools/gen_snac_fixtures.py --only-full      # -> bench-data/snac/snac_24khz
# (the published weights cannot be downloaded here; codes of a seed-initialised model are not a
# trained codec's, so the figures show the pipeline, not the statistics of real SNAC tokens).
#
# Steps: speech clips (espeak-ng, 6 voices, a fixed list of sentences, 24 kHz mono) ->
# `audiotok encode` (token store, 3 scales 1:2:4) -> `audiotok analyze` (JSON + plots) ->
# `audiotok bpe train` with each variant (same merge budget), `bpe inspect --input` for the
# compression, and a lossless check: `bpe encode` then `bpe decode --like` gives the store's codes.
# Everything lands in bench-data/codec-tokens/ (git-ignored); the summary is printed and written to
# bench-data/codec-tokens/summary.md.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIPS=${1:-120}
MERGES=${MERGES:-2000}
OUT=bench-data/codec-tokens
BIN=target/release/audiotok
MODEL=bench-data/snac/snac_24khz
[ -x "$BIN" ] || { echo "build first: cargo build --release -p audiotok-cli" >&2; exit 1; }
[ -f "$MODEL/config.json" ] || { echo "no $MODEL: run tools/gen_snac_fixtures.py --only-full" >&2; exit 1; }
mkdir -p "$OUT/speech"

sentences=(
  "The quick brown fox jumps over the lazy dog near the river bank."
  "Please call Stella and ask her to bring these things with her from the store."
  "Six spoons of fresh snow peas, five thick slabs of blue cheese, and maybe a snack for her brother Bob."
  "We also need a small plastic snake and a big toy frog for the kids."
  "She can scoop these things into three red bags, and we will go meet her Wednesday at the train station."
  "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow."
  "The rainbow is a division of white light into many beautiful colors."
  "These take the shape of a long round arch, with its path high above, and its two ends apparently beyond the horizon."
  "There is, according to legend, a boiling pot of gold at one end."
  "People look, but no one ever finds it."
  "Audio language models learn from millions of hours of recorded speech."
  "Every clip is cut into frames, and every frame becomes a handful of discrete codes."
  "A codec with three scales gives one coarse code, two middle codes and four fine codes per frame."
  "Byte pair encoding merges the most frequent neighbouring symbols into new ones."
  "The weather tomorrow will be cloudy in the morning, with sunny spells later in the day."
  "Turn left at the second junction, then keep right until you reach the old mill."
  "Numbers such as four hundred and twelve, or nineteen eighty four, are read out in full."
  "Could you repeat that more slowly, please, I did not quite catch the last part."
  "The meeting has been moved to half past three on Thursday afternoon."
  "Thank you for listening, and see you next time."
)
voices=(en en-us en-gb-x-rp en+f3 en+m3 en-gb-scotland)

n=0
for ((i = 0; i < CLIPS; i++)); do
  f="$OUT/speech/clip_$(printf %04d "$i").wav"
  if [ ! -f "$f" ]; then
    s1=${sentences[$((i % ${#sentences[@]}))]}
    s2=${sentences[$(((i * 7 + 3) % ${#sentences[@]}))]}
    # Every (sentence, voice) pair once: 20 sentences x 6 voices for the default 120 clips.
    v=${voices[$(((i / ${#sentences[@]}) % ${#voices[@]}))]}
    speed=$((140 + (i * 13) % 60))
    espeak-ng -v "$v" -s "$speed" -w "$OUT/speech/tmp.wav" "$s1 $s2"
    sox -R -D "$OUT/speech/tmp.wav" -r 24000 -c 1 -b 16 "$f.tmp.wav"
    mv "$f.tmp.wav" "$f"
    rm -f "$OUT/speech/tmp.wav"
  fi
  n=$((n + 1))
done
secs=$(soxi -DT "$OUT"/speech/clip_*.wav)
echo "speech: $n clips, $secs s"

# The store is kept between runs (REENCODE=1 to encode again and time it).
if [ -n "${REENCODE:-}" ] || [ ! -f "$OUT/store/metadata.json" ]; then
  rm -rf "$OUT/store"
  t0=$(date +%s.%N)
  "$BIN" encode --model "$MODEL" --input "$OUT/speech" --output "$OUT/store" --segment-length 0 >/dev/null
  t1=$(date +%s.%N)
  enc_note="encode $(printf %.1f "$(echo "$t1 - $t0" | bc)") s"
else
  enc_note="encode: store reused (REENCODE=1 to time it)"
fi
"$BIN" analyze "$OUT/store" --codebook-size 4096 --json "$OUT/analyze.json" --plots "$OUT/plots" >"$OUT/analyze.txt"
{
  echo "# Codec tokens made by audiotok (SNAC 24 kHz, seed-initialised weights)"
  echo
  echo "speech: $n espeak-ng clips, $(printf %.1f "$secs") s; $enc_note"
  echo
  echo '```'
  sed -n '1,200p' "$OUT/analyze.txt"
  echo '```'
  echo
  echo "| variant | base symbols | merges learned | vocabulary | train s | compression (codes per symbol) | lossless |"
  echo "|---|---:|---:|---:|---:|---|---|"
} >"$OUT/summary.md"

# The interleaved base stream as text (a model with no merges), for the single-stream checks.
"$BIN" bpe train --variant plain --merges 0 --codebook-size 4096 --input "$OUT/store" --out "$OUT/bpe_none.json" 2>/dev/null
"$BIN" bpe encode --model "$OUT/bpe_none.json" --input "$OUT/store" --output "$OUT/base.txt" 2>/dev/null

for v in plain rl thresholded cross-scale hierarchical rl+cross-scale; do
  extra=()
  case "$v" in
    thresholded) extra=(--min-freq 5) ;;
    rl | rl+cross-scale) extra=(--max-run 8) ;;
  esac
  m="$OUT/bpe_${v/+/_}.json"
  t0=$(date +%s.%N)
  "$BIN" bpe train --variant "$v" --merges "$MERGES" --codebook-size 4096 "${extra[@]}" --input "$OUT/store" --out "$m" 2>"$OUT/train_${v/+/_}.log"
  t1=$(date +%s.%N)
  "$BIN" bpe inspect --model "$m" --input "$OUT/store" --top 0 >"$OUT/inspect_${v/+/_}.txt"
  # "PATH: variant V, base B symbols, vocabulary W, M merges"
  head=$(head -1 "$OUT/inspect_${v/+/_}.txt")
  base=$(echo "$head" | sed -E 's/.*base ([0-9]+) symbols.*/\1/')
  vocab=$(echo "$head" | sed -E 's/.*vocabulary ([0-9]+).*/\1/')
  learned=$(echo "$head" | sed -E 's/.* ([0-9]+) merges.*/\1/')
  comp=$(grep -i "^compression" "$OUT/inspect_${v/+/_}.txt" | sed -E 's/^compression: //; s/ over .*//')
  # Lossless: encode the store, decode it back, compare with the base codes: the interleaved
  # text for single-stream models, the whole store (batches and metadata.json, byte for byte) for
  # multi-scale ones.
  enc="$OUT/enc_${v/+/_}.txt"
  dec="$OUT/dec_${v/+/_}"
  rm -rf "$dec"
  "$BIN" bpe encode --model "$m" --input "$OUT/store" --output "$enc" 2>/dev/null
  ok=NO
  case "$v" in
    plain | rl | thresholded)
      "$BIN" bpe decode --model "$m" --input "$enc" --output "$dec.txt" 2>/dev/null
      cmp -s "$dec.txt" "$OUT/base.txt" && ok=yes ;;
    *)
      "$BIN" bpe decode --model "$m" --input "$enc" --output "$dec" --like "$OUT/store" 2>/dev/null
      ok=yes
      diff -rq "$OUT/store" "$dec" >/dev/null || ok=NO ;;
  esac
  echo "| $v | $base | $learned | $vocab | $(printf %.2f "$(echo "$t1 - $t0" | bc)") | $comp | $ok |" >>"$OUT/summary.md"
done
cat "$OUT/summary.md"
