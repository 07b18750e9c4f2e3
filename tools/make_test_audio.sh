#!/usr/bin/env bash
# make_test_audio.sh - deterministic synthetic speech fixtures for audiotok tests.
#
# Regenerate (from the repository root):
#     tools/make_test_audio.sh
# Then regenerate the golden reference outputs that depend on these clips:
#     .venv/bin/python tools/gen_goldens.py
#
# Everything is synthesised locally with espeak-ng (fixed voices, speeds, texts)
# and post-processed with sox/ffmpeg; there is no randomness (sox runs with -R
# and -D: repeatable RNG and no dither), no timestamps, no encoder metadata
# beyond the encoders' fixed vendor strings. Rerunning the script with the tool
# versions below yields byte-identical files (tools/make_test_audio.sh --check
# regenerates twice into temporary folders and compares sha256 sums).
#
# Tool versions used to produce the committed files (Debian 12 packages):
#     espeak-ng 1.51 (espeak-ng-data from Debian 1.51+dfsg-10)
#     sox       14.4.2
#     ffmpeg    5.1.x (Debian 5.1.*-0+deb12u1; libmp3lame, libvorbis, libopus)
#     python    .venv/bin/python (stdlib only: struct, wave) for the hand-built WAVs
# Other versions of these tools may produce slightly different bytes; the
# goldens (tests/fixtures/golden/goldens.json) record the sha256 of each input
# clip, so a mismatch is detectable.
#
# Outputs (tests/fixtures/audio/):
#     speech_0.1s.wav   16 kHz mono PCM16 WAV,   1600 samples
#     speech_1s.wav     16 kHz mono PCM16 WAV,  16000 samples
#     speech_7s.flac    16 kHz mono 16-bit FLAC, 112000 samples
#     speech_30s.flac   16 kHz mono 16-bit FLAC, 480000 samples
#     speech_45s.flac   16 kHz mono 16-bit FLAC, 720000 samples
#     speech_7s_44k_stereo.flac 44.1 kHz stereo 16-bit FLAC, 308700 frames
#         (left: en-us voice, right: en-gb female voice, different sentences)
#   formats/ (all derived from the same 1 s source, 16 kHz):
#     pcm_u8.wav pcm_s16.wav pcm_s24.wav pcm_s32.wav float32.wav float64.wav
#         plain WAVE_FORMAT_PCM (1) / WAVE_FORMAT_IEEE_FLOAT (3) headers, mono
#     extensible_s16_stereo.wav  WAVE_FORMAT_EXTENSIBLE (0xFFFE), 16-bit stereo,
#         SubFormat PCM, channel mask 0x3 (left: the 1 s clip, right: the clip
#         delayed by 80 samples and at half gain)
#     clip.flac clip.mp3 (libmp3lame 64 kb/s CBR) clip.ogg (Vorbis q3)
#     clip.opus (Opus in Ogg, 24 kb/s; meant to be UNSUPPORTED by audiotok)
#     clip.sph (NIST SPHERE, 16-bit PCM)
#     text.wav (a text file), empty.wav (0 bytes), truncated.flac (first half of
#     clip.flac's bytes), zero_length.wav (valid PCM16 header, 0 samples),
#     nan.wav (float32 WAV = float32.wav with NaN at samples 100..109, 8000, 15999)
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

if [[ "${1:-}" == "--check" ]]; then
    # Generate twice into scratch folders and compare byte for byte.
    A=$(mktemp -d) B=$(mktemp -d)
    trap 'rm -rf "$A" "$B"' EXIT
    AUDIOTOK_FIXTURE_OUT="$A" "$0"
    AUDIOTOK_FIXTURE_OUT="$B" "$0"
    (cd "$A" && find . -type f | sort | xargs sha256sum) > "$A.sums"
    (cd "$B" && find . -type f | sort | xargs sha256sum) > "$B.sums"
    if diff -u "$A.sums" "$B.sums"; then
        echo "OK: two runs are byte-identical ($(wc -l < "$A.sums") files)"
        if [[ -d "$ROOT/tests/fixtures/audio" ]]; then
            (cd "$ROOT/tests/fixtures/audio" && find . -type f | sort | xargs sha256sum) > "$A.committed"
            if diff -u "$A.committed" "$A.sums" > /dev/null; then
                echo "OK: identical to tests/fixtures/audio"
            else
                echo "NOTE: differs from tests/fixtures/audio:"; diff -u "$A.committed" "$A.sums" || true
            fi
            rm -f "$A.committed"
        fi
        rm -f "$A.sums" "$B.sums"
    else
        rm -f "$A.sums" "$B.sums"
        echo "FAIL: runs differ" >&2; exit 1
    fi
    exit 0
fi

OUT=${AUDIOTOK_FIXTURE_OUT:-$ROOT/tests/fixtures/audio}
FMT=$OUT/formats
mkdir -p "$OUT" "$FMT"

if [[ -x "$ROOT/.venv/bin/python" ]]; then PY=$ROOT/.venv/bin/python; else PY=python3; fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# sox: -D no dither, -R repeatable RNG, -V1 only errors, --no-glob literal names.
# --comment "" stops sox from writing its default "Processed by SoX" comment.
SOX=(sox -D -R -V1 --no-glob)
SOXOUT=(--comment "")
# ffmpeg: no metadata, bit-exact muxing (no encoder version strings / random Ogg serials).
FF=(ffmpeg -nostdin -hide_banner -loglevel error -y)
FFOUT=(-map_metadata -1 -fflags +bitexact -flags:a +bitexact)

# say VOICE SPEED OUTWAV TEXT : espeak-ng -> 22050 Hz mono 16-bit WAV.
say() {
    espeak-ng -v "$1" -s "$2" -p 50 -a 100 -g 0 -w "$3" "$4"
}

# silence SECONDS OUTWAV : 22050 Hz mono 16-bit digital silence.
silence() {
    "${SOX[@]}" -n -r 22050 -c 1 -b 16 -e signed-integer "$2" trim 0 "$1"
}

# fit IN OUT RATE NSAMPLES [extra sox output options...]:
# high-quality resample to RATE, normalise peak to -3 dBFS, pad with digital
# silence and cut to exactly NSAMPLES samples.
fit() {
    local in=$1 out=$2 rate=$3 n=$4; shift 4
    "${SOX[@]}" "$in" "${SOXOUT[@]}" -c 1 -b 16 -e signed-integer "$@" "$out" \
        rate -v "$rate" norm -3 pad 0 60 trim 0 "${n}s"
}

# ---------------------------------------------------------------------------
# Sentence bank (fixed texts; the Harvard / "Please call Stella" / rainbow
# passages are classic public-domain phonetically balanced material).
S01="The quick brown fox jumps over the lazy dog."
S02="Audio tokenizers turn waveforms into discrete codes for language models."
S03="Please call Stella. Ask her to bring these things with her from the store."
S04="Six spoons of fresh snow peas, five thick slabs of blue cheese, and maybe a snack for her brother Bob."
S05="We also need a small plastic snake and a big toy frog for the kids."
S06="She can scoop these things into three red bags, and we will go meet her Wednesday at the train station."
S07="When the sunlight strikes raindrops in the air, they act as a prism and form a rainbow."
S08="The rainbow is a division of white light into many beautiful colors."
S09="These take the shape of a long round arch, with its path high above, and its two ends apparently beyond the horizon."
S10="The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."
S11="It is easy to tell the depth of a well. These days a chicken leg is a rare dish."
S12="Rice is often served in round bowls. The juice of lemons makes fine punch."
S13="Numbers such as three hundred and forty two, or seven point five, should be read aloud clearly."
S14="The box was thrown beside the parked truck. The hogs were fed chopped corn and garbage."

# --- speech_0.1s.wav: 100 ms taken from inside a word --------------------------
say en-us 160 "$TMP/s01.wav" "$S01"
# Skip to 0.30 s into the utterance (leading espeak silence included) -> voiced speech.
"${SOX[@]}" "$TMP/s01.wav" "$TMP/s01_16k.wav" rate -v 16000 norm -3
"${SOX[@]}" "$TMP/s01_16k.wav" "${SOXOUT[@]}" -b 16 -e signed-integer "$OUT/speech_0.1s.wav" trim 4800s 1600s

# --- speech_1s.wav: a short phrase padded/cut to exactly 1 s ----------------
say en-us 200 "$TMP/hello.wav" "Hello, world."
fit "$TMP/hello.wav" "$OUT/speech_1s.wav" 16000 16000

# --- speech_7s.flac ---------------------------------------------------------
say en-us 160 "$TMP/s02.wav" "$S02"
say en-gb 160 "$TMP/s03.wav" "$S03"
silence 0.35 "$TMP/gap.wav"
"${SOX[@]}" "$TMP/s02.wav" "$TMP/gap.wav" "$TMP/s03.wav" "$TMP/cat7.wav"
fit "$TMP/cat7.wav" "$OUT/speech_7s.flac" 16000 112000

# --- speech_30s.flac / speech_45s.flac: many sentences, several voices ------
# Sentence pauses of 0.7 s. speech_30s.flac is deliberately the first 30 s of
# speech_45s.flac (so whisper128_30s and whisper128_45s goldens are identical
# files, which git stores once; the 45 s golden checks truncation to 30 s).
silence 0.7 "$TMP/gap_long.wav"
voices=(en-us en-gb en-us+f3 en-gb-scotland en-029 en-us+m3 en-gb-x-rp en-us+f2)
parts=()
i=0
for s in "$S04" "$S05" "$S06" "$S07" "$S08" "$S09" "$S10" "$S11" "$S12" "$S13" "$S14" "$S01" "$S02"; do
    v=${voices[$((i % ${#voices[@]}))]}
    say "$v" 165 "$TMP/long_$i.wav" "$s"
    parts+=("$TMP/long_$i.wav" "$TMP/gap_long.wav")
    i=$((i + 1))
done
"${SOX[@]}" "${parts[@]}" "$TMP/cat_long.wav"
fit "$TMP/cat_long.wav" "$OUT/speech_30s.flac" 16000 480000
fit "$TMP/cat_long.wav" "$OUT/speech_45s.flac" 16000 720000

# --- speech_7s_44k_stereo.flac: two different channels at 44.1 kHz -------------
say en-us 165 "$TMP/l1.wav" "$S07"
say en-us 165 "$TMP/l2.wav" "$S12"
say en-gb+f3 150 "$TMP/r1.wav" "$S08"
say en-gb+f3 150 "$TMP/r2.wav" "$S05"
silence 0.25 "$TMP/gap25.wav"
"${SOX[@]}" "$TMP/l1.wav" "$TMP/gap.wav" "$TMP/l2.wav" "$TMP/left.wav"
"${SOX[@]}" "$TMP/gap25.wav" "$TMP/r1.wav" "$TMP/gap.wav" "$TMP/r2.wav" "$TMP/right.wav"
fit "$TMP/left.wav" "$TMP/left44.wav" 44100 308700
fit "$TMP/right.wav" "$TMP/right44.wav" 44100 308700
"${SOX[@]}" -M "$TMP/left44.wav" "$TMP/right44.wav" "${SOXOUT[@]}" -b 16 -e signed-integer \
    "$OUT/speech_7s_44k_stereo.flac"

# ---------------------------------------------------------------------------
# Format variants of the 1 s clip. Each is produced from the same 32-bit sox
# pipeline (espeak 22.05 kHz -> 16 kHz), so the 24/32-bit/float variants carry
# more precision than the 16-bit one.
one() { # one OUTFILE [sox output format options...]
    local out=$1; shift
    "${SOX[@]}" "$TMP/hello.wav" "${SOXOUT[@]}" -c 1 "$@" "$out" \
        rate -v 16000 norm -3 pad 0 60 trim 0 16000s
}
one "$FMT/pcm_u8.wav"  -t wavpcm -b 8  -e unsigned-integer
one "$FMT/pcm_s16.wav" -t wavpcm -b 16 -e signed-integer
one "$FMT/pcm_s24.wav" -t wavpcm -b 24 -e signed-integer
one "$FMT/pcm_s32.wav" -t wavpcm -b 32 -e signed-integer
one "$FMT/float32.wav" -t wavpcm -b 32 -e floating-point
one "$FMT/float64.wav" -t wavpcm -b 64 -e floating-point
one "$FMT/clip.flac"   -t flac   -b 16 -e signed-integer
one "$FMT/clip.sph"    -t sph    -b 16 -e signed-integer
# Lossy encodes (from the 16-bit clip).
"${FF[@]}" -i "$OUT/speech_1s.wav" "${FFOUT[@]}" -c:a libmp3lame -b:a 64k "$FMT/clip.mp3"
"${FF[@]}" -i "$OUT/speech_1s.wav" "${FFOUT[@]}" -c:a libvorbis -q:a 3 "$FMT/clip.ogg"
"${FF[@]}" -i "$OUT/speech_1s.wav" "${FFOUT[@]}" -c:a libopus -b:a 24k "$FMT/clip.opus"

# Invalid / edge-case inputs.
printf 'This is not a WAV file.\nIt is plain text with a .wav extension.\n' > "$FMT/text.wav"
: > "$FMT/empty.wav"
size=$(stat -c %s "$FMT/clip.flac")
head -c $((size / 2)) "$FMT/clip.flac" > "$FMT/truncated.flac"

# Stereo source for the extensible file: L = clip, R = clip delayed 80 samples at -6 dB.
"${SOX[@]}" "$OUT/speech_1s.wav" "$TMP/right1.wav" pad 80s 0 trim 0 16000s vol 0.5
"${SOX[@]}" -M "$OUT/speech_1s.wav" "$TMP/right1.wav" -t wavpcm -b 16 -e signed-integer "$TMP/stereo16.wav"

"$PY" - "$TMP/stereo16.wav" "$FMT/float32.wav" "$FMT" <<'PYEOF'
import struct, sys, wave, array

stereo_src, float_src, fmt_dir = sys.argv[1], sys.argv[2], sys.argv[3]

def chunks(data):
    """Yield (id, payload) for each RIFF chunk after the 12-byte header."""
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE", "not RIFF/WAVE"
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        yield cid, data[pos + 8:pos + 8 + size]
        pos += 8 + size + (size & 1)

def riff(*chunk_list):
    body = b"WAVE"
    for cid, payload in chunk_list:
        body += cid + struct.pack("<I", len(payload)) + payload
        if len(payload) & 1:
            body += b"\0"
    return b"RIFF" + struct.pack("<I", len(body)) + body

# extensible_s16_stereo.wav: WAVE_FORMAT_EXTENSIBLE, 16-bit, 2 channels.
with wave.open(stereo_src, "rb") as w:
    assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 16000)
    pcm = w.readframes(w.getnframes())
KSDATAFORMAT_SUBTYPE_PCM = struct.pack("<IHH", 0x00000001, 0x0000, 0x0010) + bytes(
    [0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71])
fmt_ext = struct.pack("<HHIIHH", 0xFFFE, 2, 16000, 16000 * 4, 4, 16) + struct.pack(
    "<HHI", 22, 16, 0x3) + KSDATAFORMAT_SUBTYPE_PCM
assert len(fmt_ext) == 40
with open(f"{fmt_dir}/extensible_s16_stereo.wav", "wb") as f:
    f.write(riff((b"fmt ", fmt_ext), (b"data", pcm)))

# zero_length.wav: a valid PCM16 mono 16 kHz header with an empty data chunk.
fmt_pcm16 = struct.pack("<HHIIHH", 1, 1, 16000, 32000, 2, 16)
with open(f"{fmt_dir}/zero_length.wav", "wb") as f:
    f.write(riff((b"fmt ", fmt_pcm16), (b"data", b"")))

# nan.wav: float32.wav's samples with quiet NaNs injected at fixed positions.
src = dict(chunks(open(float_src, "rb").read()))
tag, ch, sr = struct.unpack("<HHI", src[b"fmt "][:8])
assert (tag, ch, sr) == (3, 1, 16000), (tag, ch, sr)
samples = array.array("f")
samples.frombytes(src[b"data"])
if sys.byteorder != "little":
    samples.byteswap()
nan_positions = list(range(100, 110)) + [8000, 15999]
for i in nan_positions:
    samples[i] = float("nan")
if sys.byteorder != "little":
    samples.byteswap()
fmt_f32 = struct.pack("<HHIIHHH", 3, 1, 16000, 64000, 4, 32, 0)   # 18-byte fmt, cbSize 0
fact = struct.pack("<I", len(samples))
with open(f"{fmt_dir}/nan.wav", "wb") as f:
    f.write(riff((b"fmt ", fmt_f32), (b"fact", fact), (b"data", samples.tobytes())))
PYEOF

# Sanity checks on headers.
tag_of() { od -An -tu2 -j20 -N2 "$1" | tr -d ' '; }
for f in pcm_u8 pcm_s16 pcm_s24 pcm_s32; do
    [[ $(tag_of "$FMT/$f.wav") == 1 ]] || { echo "bad format tag in $f.wav" >&2; exit 1; }
done
for f in float32 float64 nan; do
    [[ $(tag_of "$FMT/$f.wav") == 3 ]] || { echo "bad format tag in $f.wav" >&2; exit 1; }
done
[[ $(tag_of "$FMT/extensible_s16_stereo.wav") == 65534 ]] || { echo "extensible tag missing" >&2; exit 1; }
[[ $(tag_of "$OUT/speech_1s.wav") == 1 ]] || { echo "bad format tag in speech_1s.wav" >&2; exit 1; }

echo "wrote $(find "$OUT" -type f | wc -l) files under $OUT ($(du -sh "$OUT" | cut -f1))"
