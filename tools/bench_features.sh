#!/usr/bin/env bash
# bench_features.sh - audiotok `features --kind whisper-128` against the Python reference stack
# (soundfile + librosa.to_mono + soxr HQ + transformers' WhisperFeatureExtractor, numpy path),
# both on ONE core.
#
# Run by hand from anywhere (it works relative to the repository root):
#     tools/bench_features.sh                # build, make data if missing, benchmark
#     tools/bench_features.sh --runs 5       # extra arguments go to tools/bench_features.py
#     BENCH_NO_BUILD=1 tools/bench_features.sh   # use the binaries already in target/release
#
# Needs: espeak-ng, sox (with FLAC), cargo, and the project venv (.venv: numpy, soundfile, soxr,
# librosa, transformers; no torch). Writes everything under bench-data/ (git-ignored):
#     bench-data/speech_wav/   100 clips, 2..20 s (lengths evenly spread), 16 kHz mono PCM16 WAV,
#                              cut from tests/fixtures/audio/speech_45s.flac at varying offsets
#     bench-data/speech_flac/  the same 100 clips as 16-bit FLAC
#     bench-data/flac44k/      10 clips of 30 s, 44.1 kHz stereo 16-bit FLAC (two espeak-ng
#                              voices reading different sentences, one per channel)
#     bench-data/out/          feature outputs of both sides (overwritten each run)
#     bench-data/bench_features.md   the results table
# Data is created once (deterministically: fixed texts/voices/offsets, sox -D -R) and reused;
# delete a folder to have it made again.
#
# Timing: tools/bench_features.py runs pinned with `taskset -c 0` and OMP/OPENBLAS/MKL threads = 1;
# audiotok runs as `taskset -c 0 audiotok features --kind whisper-128 --jobs 1 --out DIR DIR`
# (whole-process wall time, best of N). The --jobs scaling rows run audiotok on `taskset -c 0,1`.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
DATA=$ROOT/bench-data
PY=$ROOT/.venv/bin/python
SRC=$ROOT/tests/fixtures/audio/speech_45s.flac

for tool in sox espeak-ng taskset; do
    command -v "$tool" > /dev/null || { echo "error: $tool not found" >&2; exit 1; }
done
[[ -x "$PY" ]] || { echo "error: $PY not found (create the project venv first)" >&2; exit 1; }
[[ -f "$SRC" ]] || { echo "error: $SRC missing" >&2; exit 1; }

SOX=(sox -D -R -V1 --no-glob)
SOXOUT=(--comment "")

mkdir -p "$DATA"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# ---------------------------------------------------------------------------
# (a) + (b): 100 speech clips, 2..20 s, as WAV and FLAC.
N_SPEECH=100
SRC_N=$(soxi -s "$SRC")   # 720000 samples at 16 kHz
make_speech() {
    local wav=$DATA/speech_wav flac=$DATA/speech_flac
    rm -rf "$wav" "$flac"
    mkdir -p "$wav.tmp" "$flac.tmp"
    local i n off span
    for ((i = 0; i < N_SPEECH; i++)); do
        # Length: 2 s + 18 s * i / 99, in samples at 16 kHz (2.000 .. 20.000 s, evenly spread).
        n=$((32000 + 288000 * i / (N_SPEECH - 1)))
        # Offset: a fixed pseudo-random fraction (i * 37 mod 100) of the room left in the source.
        span=$((SRC_N - n))
        off=$((span * ((i * 37) % 100) / 100))
        printf -v name 'clip_%03d' "$i"
        "${SOX[@]}" "$SRC" -t wavpcm -b 16 -e signed-integer "$wav.tmp/$name.wav" trim "${off}s" "${n}s"
        "${SOX[@]}" "$wav.tmp/$name.wav" "${SOXOUT[@]}" -b 16 -e signed-integer "$flac.tmp/$name.flac"
    done
    mv "$wav.tmp" "$wav"
    mv "$flac.tmp" "$flac"
}
count() { find "$1" -maxdepth 1 -type f -name "$2" 2> /dev/null | wc -l; }
if [[ $(count "$DATA/speech_wav" '*.wav') -eq $N_SPEECH && $(count "$DATA/speech_flac" '*.flac') -eq $N_SPEECH ]]; then
    echo "bench-data: speech_wav/ and speech_flac/ present, not regenerated"
else
    echo "bench-data: making $N_SPEECH speech clips (WAV + FLAC) ..."
    rm -rf "$DATA/speech_wav.tmp" "$DATA/speech_flac.tmp"
    make_speech
fi

# ---------------------------------------------------------------------------
# (c): 10 clips of 30 s, 44.1 kHz stereo 16-bit FLAC; left and right are different voices
# reading different sentence orders.
N_44K=10
SENT=(
    "The quick brown fox jumps over the lazy dog."
    "Please call Stella. Ask her to bring these things with her from the store."
    "When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow."
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."
    "It is easy to tell the depth of a well. These days a chicken leg is a rare dish."
    "Rice is often served in round bowls. The juice of lemons makes fine punch."
    "The box was thrown beside the parked truck. The hogs were fed chopped corn and garbage."
    "A large size in stockings is hard to sell. Four hours of steady work faced us."
    "The small pup gnawed a hole in the sock. The fish twisted and turned on the bent hook."
    "Press the pants and sew a button on the vest. The swan dive was far short of perfect."
    "Benchmarks should be repeatable, so every clip here is made the same way each time."
    "Feature extraction turns thirty seconds of sound into a matrix of log mel energies."
)
VOICES=(en-us en-gb en-us+f3 en-gb-scotland en-029 en-us+m3 en-gb-x-rp en-us+f2 en-gb+f4 en-us-nyc)
make_44k() {
    local out=$DATA/flac44k k c v start parts j s
    rm -rf "$out"
    mkdir -p "$out.tmp"
    "${SOX[@]}" -n -r 22050 -c 1 -b 16 -e signed-integer "$TMP/gap.wav" trim 0 0.6
    for ((k = 0; k < N_44K; k++)); do
        for c in 0 1; do
            # Left: voice k, sentences from k; right: voice k+5, sentences from k+6 (other text).
            v=${VOICES[$(((k + 5 * c) % ${#VOICES[@]}))]}
            start=$((k + 6 * c))
            parts=()
            for ((j = 0; j < ${#SENT[@]}; j++)); do
                s=${SENT[$(((start + j) % ${#SENT[@]}))]}
                espeak-ng -v "$v" -s $((155 + 5 * k)) -p 50 -a 100 -g 0 -w "$TMP/s_${c}_$j.wav" "$s"
                parts+=("$TMP/s_${c}_$j.wav" "$TMP/gap.wav")
            done
            "${SOX[@]}" "${parts[@]}" "$TMP/cat_$c.wav"
            # 22.05 kHz -> 44.1 kHz, -3 dBFS peak, exactly 30 s (pad with silence if short).
            "${SOX[@]}" "$TMP/cat_$c.wav" -b 16 -e signed-integer "$TMP/ch_$c.wav" \
                rate -v 44100 norm -3 pad 0 30 trim 0 1323000s
        done
        printf -v name 'stereo_%02d' "$k"
        "${SOX[@]}" -M "$TMP/ch_0.wav" "$TMP/ch_1.wav" "${SOXOUT[@]}" -b 16 -e signed-integer \
            "$out.tmp/$name.flac"
    done
    mv "$out.tmp" "$out"
}
if [[ $(count "$DATA/flac44k" '*.flac') -eq $N_44K ]]; then
    echo "bench-data: flac44k/ present, not regenerated"
else
    echo "bench-data: making $N_44K clips of 30 s 44.1 kHz stereo FLAC ..."
    rm -rf "$DATA/flac44k.tmp"
    make_44k
fi

# ---------------------------------------------------------------------------
# Binaries.
if [[ -z "${BENCH_NO_BUILD:-}" ]]; then
    echo "building target/release/examples/decode_speed ..."
    cargo build --quiet --release -p audiotok-audio --example decode_speed
    echo "building target/release/audiotok ..."
    if ! cargo build --quiet --release -p audiotok-cli; then
        echo "WARNING: audiotok-cli did not build; the audiotok columns will be skipped" \
            "(or use a stale target/release/audiotok if one exists)" >&2
    fi
fi

# ---------------------------------------------------------------------------
# Benchmark: Python pinned to core 0, single-threaded BLAS/OpenMP.
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
export TRANSFORMERS_VERBOSITY=error
# The Python stack is measured twice when .venv-torch exists: WhisperFeatureExtractor's numpy path
# (.venv, no torch: the path the golden fixtures come from) and its torch path (.venv-torch, what
# users with torch installed run). Make .venv-torch with:
#   python3 -m venv .venv-torch && .venv-torch/bin/pip install -r tools/requirements-golden.txt torch
for venv in .venv .venv-torch; do
    [[ -x "$ROOT/$venv/bin/python" ]] || continue
    taskset -c 0 "$ROOT/$venv/bin/python" "$ROOT/tools/bench_features.py" \
        --data "$DATA" \
        --audiotok "$ROOT/target/release/audiotok" \
        --decode-speed "$ROOT/target/release/examples/decode_speed" \
        --md "$DATA/bench_features${venv#.venv}.md" \
        "$@"
done
