"""audiotok.pack and count_tokens: the same job as `audiotok pack`/`count`, checked against the
reference shards of tests/fixtures/pack (the Qwen2-Audio notebook loop, mosaicml-streaming)."""

from __future__ import annotations

import json

import pytest

import audiotok
from conftest import FIXTURES, ROOT

PACK = FIXTURES / "pack"
TOKENIZER = PACK / "qwen2-tokenizer"

needs_tokenizer = pytest.mark.skipif(
    not (TOKENIZER / "vocab.json").is_file(), reason="run tools/fetch_qwen_tokenizer.sh (the README's test command does)"
)


def same_dataset(got, want):
    names = sorted(p.name for p in want.iterdir())
    assert sorted(p.name for p in got.iterdir() if p.name != "rejects.jsonl") == names
    for n in names:
        assert (got / n).read_bytes() == (want / n).read_bytes(), n


@needs_tokenizer
@pytest.mark.parametrize("compat,ref", [(None, "standard_4096_greedy_all"), ("cooking", "cooking_4096")])
def test_rows_in_memory_and_from_a_file_give_the_reference_shards(tmp_path, compat, ref):
    lines = (PACK / "rows.jsonl").read_text().splitlines()
    good = []
    for line in lines:
        try:
            good.append(json.loads(line))
        except json.JSONDecodeError:
            pass  # the malformed line: not a row at all in memory
    seen = []
    out = tmp_path / "mem"
    s = audiotok.pack(good, tokenizer=TOKENIZER, out=out, compat=compat, audio_root=ROOT,
                      progress=lambda phase, done, total: seen.append((phase, done, total)))
    from_file = audiotok.pack(PACK / "rows.jsonl", tokenizer=TOKENIZER, out=tmp_path / "file", compat=compat,
                              audio_root=ROOT, num_threads=2)
    same_dataset(tmp_path / "file", PACK / ref)
    assert from_file["rejected_rows"] == len(from_file["rejects"]) > 0
    assert [r["line"] for r in from_file["rejects"]] == sorted(r["line"] for r in from_file["rejects"])
    assert {r["kind"] for r in from_file["rejects"]} <= set(from_file["rejects_by_kind"])
    # In memory the other bad rows are rejected as from the file, named by their index.
    assert s["rows"] == len(good)
    assert s["packed_rows"] == from_file["packed_rows"]
    assert all("index" in r and "file" not in r for r in s["rejects"])
    same_dataset(out, PACK / ref)
    assert {p for p, _, _ in seen} >= {"audio", "rows"} and seen[-1][1] == seen[-1][2]


@needs_tokenizer
def test_pack_errors_raise_pack_error(tmp_path):
    with pytest.raises(audiotok.PackError, match="no-such-tokenizer"):
        audiotok.pack([{"text": "hi"}], tokenizer=tmp_path / "no-such-tokenizer", out=tmp_path / "o")
    bad = [{"text": "<|AUDIO|>", "audio": "missing.wav"}]
    with pytest.raises(audiotok.PackError, match="row 0: audio: missing.wav.*nothing written; 1 bad row"):
        audiotok.pack(bad, tokenizer=TOKENIZER, out=tmp_path / "o", on_error="fail")
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="compat"):
        audiotok.pack(bad, tokenizer=TOKENIZER, out=tmp_path / "o", compat="other")


def test_count_tokens_of_files_equals_the_reference_counts():
    expected = json.loads((PACK / "expected_counts.json").read_text())["audio"]
    items = list(expected.items())[:6]
    got = audiotok.count_tokens([ROOT / p for p, _ in items], profile="qwen2-audio", num_threads=2)
    assert got == [e["tokens"] for _, e in items]
    assert audiotok.count_tokens(str(ROOT / items[0][0])) == items[0][1]["tokens"]
    report = audiotok.count_files([ROOT / items[0][0], ROOT / "nope.wav"])
    assert report["totals"]["files"] == 1 and "nope.wav" in report["failed"][0]["error"]
    with pytest.raises(audiotok.AudioError, match="nope.wav"):
        audiotok.count_tokens([ROOT / "nope.wav"])
