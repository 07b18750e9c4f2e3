#!/usr/bin/env bash
# make_examples.sh - small deterministic speech clips for examples/ and docs.
#
# Regenerate (from the repository root):
#     tools/make_examples.sh            # writes examples/audio/
#     tools/make_examples.sh --check    # generate twice and compare sha256
#
# Synthesised with espeak-ng 1.51 and sox 14.4.2 (Debian 12), fixed voices,
# speeds and texts; sox runs with -D (no dither) and -R (repeatable RNG) and
# writes no comments, so reruns are byte-identical.
#
# Outputs (examples/audio/):
#     hello_en_us_16k.wav     16 kHz   mono PCM16 WAV  (en-us)
#     weather_en_gb_22k.wav   22.05 kHz mono PCM16 WAV (en-gb, female variant)
#     numbers_en_us_16k.wav   16 kHz   mono PCM16 WAV  (en-us, male variant)
#     story_en_gb_16k.flac    16 kHz   mono 16-bit FLAC (en-gb-x-rp)
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ "${1:-}" == "--check" ]]; then
    A=$(mktemp -d) B=$(mktemp -d)
    trap 'rm -rf "$A" "$B"' EXIT
    AUDIOTOK_EXAMPLES_OUT="$A" "$0"
    AUDIOTOK_EXAMPLES_OUT="$B" "$0"
    if diff <(cd "$A" && sha256sum -- *.wav *.flac | sort -k2) <(cd "$B" && sha256sum -- *.wav *.flac | sort -k2); then
        echo "OK: two runs are byte-identical"
        if diff <(cd "$A" && sha256sum -- *.wav *.flac | sort -k2) <(cd "$ROOT/examples/audio" && sha256sum -- *.wav *.flac | sort -k2) > /dev/null; then
            echo "OK: identical to examples/audio"
        else
            echo "NOTE: differs from examples/audio"
        fi
    else
        echo "FAIL: runs differ" >&2; exit 1
    fi
    exit 0
fi

OUT=${AUDIOTOK_EXAMPLES_OUT:-$ROOT/examples/audio}
mkdir -p "$OUT"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

SOX=(sox -D -R -V1 --no-glob)

# clip VOICE SPEED RATE OUTFILE TEXT
clip() {
    local voice=$1 speed=$2 rate=$3 out=$4 text=$5
    espeak-ng -v "$voice" -s "$speed" -p 50 -a 100 -g 0 -w "$TMP/raw.wav" "$text"
    "${SOX[@]}" "$TMP/raw.wav" --comment "" -c 1 -b 16 -e signed-integer "$OUT/$out" \
        rate -v "$rate" norm -3
}

clip en-us    170 16000 hello_en_us_16k.wav   "Hello! This is audio tok, turning audio into training data."
clip en-gb+f3 165 22050 weather_en_gb_22k.wav "Tomorrow will be cloudy, with sunshine in the afternoon."
clip en-us+m3 165 16000 numbers_en_us_16k.wav "Please dial five five five, zero one nine two."
clip en-gb-x-rp 160 16000 story_en_gb_16k.flac "Once upon a time, a small robot learned to listen to the sounds of the city."

echo "wrote 4 files under $OUT ($(du -sh "$OUT" | cut -f1))"
