#!/usr/bin/env python3
"""Builds tests/fixtures/sources: the same few short clips as plain files and as every audio source
audiotok reads (issue 15), each written by the real package its users have it from.

Run by hand from the repository root (the Rust tests never need Python):

    python3.11 -m venv /work/venvs/sources
    echo /work/main/.venv-torch/lib/python3.11/site-packages > \\
        /work/venvs/sources/lib/python3.11/site-packages/zz_torch.pth   # numpy, soundfile
    /work/venvs/sources/bin/pip install -r tools/requirements-sources.txt
    /work/venvs/sources/bin/python tools/gen_source_fixtures.py

Clips are synthesised with espeak-ng and converted with sox/ffmpeg (deterministic, no dither).
What is written (tests/fixtures/sources/):

- clips/: c0.flac (16 kHz), c1.wav (22.05 kHz stereo), c2.mp3 (24 kHz), c3.flac (8 kHz), long.flac
  (16 kHz, the file manifests cut segments from).
- parquet/train-0000{0,1}-of-00002.parquet: `datasets.Dataset.from_dict({"audio": paths, "text": ...,
  "speaker": ...}).cast_column("audio", Audio())`. `Dataset.to_parquet` keeps only the paths of
  local files (bytes null); the bytes are embedded the way datasets' own `push_to_hub` does it,
  `with_format("arrow").map(datasets.table.embed_table_storage, batched=True)`, then `to_parquet`
  with 2 rows per row group (so a shard has several).
- hf_cache/datasets--audiotok--tiny/snapshots/<rev>/data/train-00000-of-00001.parquet: the hub cache
  layout (a symlink into blobs/), rows 2 and 3 in one shard.
- saved/: `Dataset.save_to_disk` (dataset_info.json, state.json, data-00000-of-00001.arrow, an Arrow
  IPC stream with the bytes embedded).
- bad.parquet: a good row, a row whose bytes are not audio, a row with neither bytes nor path.
- noaudio.parquet: a text column only (no audio column).
- wds/shard-000000.tar and .tar.gz: `webdataset.TarWriter` samples {__key__, flac|wav|mp3, json, txt};
  wds/truncated.tar: shard-000000.tar cut inside its last audio member.
- lhotse/cuts.jsonl.gz, recordings.jsonl.gz, supervisions.jsonl.gz: lhotse's own writers
  (`CutSet.to_file`): cuts with offsets into long.flac, one on channel 1 of c1.wav, supervisions'
  text; lhotse_loaded.i16: what lhotse loads for each cut (int16).
- manifest.csv, manifest.tsv, manifest.jsonl: path (relative to the manifest), offset, duration,
  text; one line names a missing file.
- expected.json: what the Rust tests compare against that is not audio (texts, keys, ids, offsets).
"""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

PINS = {"datasets": "5.2.0", "pyarrow": "26.0.1", "webdataset": "1.0.2", "lhotse": "1.33.0"}

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "fixtures" / "sources"

# name, text, espeak voice, output rate, channels, extension
CLIPS = [
    ("c0", "hello world", "en", 16000, 1, "flac"),
    ("c1", "good day", "en-us", 22050, 2, "wav"),
    ("c2", "one two three", "en", 24000, 1, "mp3"),
    ("c3", "audio tokens", "en-us", 8000, 1, "flac"),
]
LONG_TEXT = "the quick brown fox jumps over the dog"


def check_versions():
    import datasets
    import lhotse
    import pyarrow
    import webdataset

    got = {
        "datasets": datasets.__version__,
        "pyarrow": pyarrow.__version__,
        "webdataset": webdataset.__version__,
        "lhotse": lhotse.__version__,
    }
    if got != PINS:
        sys.exit(f"version mismatch: want {PINS}, have {got} (tools/requirements-sources.txt)")


def run(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_clips(clips: Path):
    clips.mkdir(parents=True)
    tmp = clips / "tmp.wav"
    for name, text, voice, rate, ch, ext in CLIPS:
        run("espeak-ng", "-v", voice, "-s", "190", "-w", str(tmp), text)
        dst = clips / f"{name}.{ext}"
        if ext == "mp3":
            run("ffmpeg", "-nostdin", "-y", "-i", str(tmp), "-ar", str(rate), "-ac", str(ch), "-b:a", "32k",
                "-map_metadata", "-1", "-fflags", "+bitexact", str(dst))
        else:
            remix = ["remix", "1", "1v0.5"] if ch == 2 else []
            run("sox", "-D", "-R", str(tmp), "-b", "16", "-r", str(rate), str(dst), *remix)
    run("espeak-ng", "-v", "en", "-s", "170", "-w", str(tmp), LONG_TEXT)
    run("sox", "-D", "-R", str(tmp), "-b", "16", "-r", "16000", str(clips / "long.flac"))
    tmp.unlink()
    return [(clips / f"{n}.{e}", t) for n, t, _, _, _, e in CLIPS]


def embedded(ds):
    """What push_to_hub uploads: the files' bytes embedded in the audio column."""
    from datasets.table import embed_table_storage

    return ds.with_format("arrow").map(embed_table_storage, batched=True).with_format(None)


def make_parquet(clips):
    from datasets import Audio, Dataset

    rel = [os.path.relpath(p, OUT) for p, _ in clips]
    texts = [t for _, t in clips]
    speakers = [f"spk{i % 2}" for i in range(len(clips))]
    os.chdir(OUT)  # the paths datasets keeps are the ones given: relative to the fixture folder
    ds = Dataset.from_dict({"audio": rel, "text": texts, "speaker": speakers}).cast_column("audio", Audio())
    # Without embedding, to_parquet keeps the paths only: say so loudly if that ever changes.
    ds.to_parquet("paths_only.parquet")
    import pyarrow.parquet as pq

    kept = pq.read_table("paths_only.parquet").column("audio").to_pylist()
    assert all(r["bytes"] is None for r in kept), "to_parquet now embeds bytes: simplify the generator"
    Path("paths_only.parquet").unlink()

    emb = embedded(ds)
    (OUT / "parquet").mkdir()
    emb.select(range(0, 3)).to_parquet("parquet/train-00000-of-00002.parquet", batch_size=2)
    emb.select(range(3, 4)).to_parquet("parquet/train-00001-of-00002.parquet", batch_size=2)

    rev = "0123456789abcdef0123456789abcdef01234567"
    repo = OUT / "hf_cache" / "datasets--audiotok--tiny"
    (repo / "blobs").mkdir(parents=True)
    (repo / "snapshots" / rev / "data").mkdir(parents=True)
    tmp = repo / "whole.parquet"
    emb.select(range(2, 4)).to_parquet(str(tmp), batch_size=100)
    blob = hashlib.sha256(tmp.read_bytes()).hexdigest()
    tmp.rename(repo / "blobs" / blob)
    (repo / "snapshots" / rev / "data" / "train-00000-of-00001.parquet").symlink_to(f"../../../blobs/{blob}")

    ds.save_to_disk("saved")

    bad = Dataset.from_dict(
        {
            "audio": [
                {"bytes": Path(clips[0][0]).read_bytes(), "path": "c0.flac"},
                {"bytes": b"this is not audio at all", "path": "junk.wav"},
                {"bytes": None, "path": None},
            ],
            "text": ["good", "junk", "empty"],
        }
    ).cast_column("audio", Audio())
    bad.to_parquet("bad.parquet")
    Dataset.from_dict({"text": ["no audio here"]}).to_parquet("noaudio.parquet")
    return texts, speakers


def make_wds(clips):
    import webdataset as wds

    (OUT / "wds").mkdir()
    keys = []
    for gz in (False, True):
        name = OUT / "wds" / ("shard-000000.tar.gz" if gz else "shard-000000.tar")
        # Fixed mtime: reruns give the same bytes.
        with wds.TarWriter(str(name), compress=gz, mtime=0) as w:
            for i, (p, text) in enumerate(clips):
                key = f"sample{i:04d}"
                ext = p.suffix[1:]
                w.write({"__key__": key, ext: p.read_bytes(), "json": {"text": text, "n": i}, "txt": text})
                if not gz:
                    keys.append((key, ext))
    # truncated.tar: samples 0 and 3, cut inside the second one's audio member.
    two = OUT / "wds" / "two.tar"
    with wds.TarWriter(str(two), mtime=0) as w:
        for i in (0, 3):
            p, text = clips[i]
            w.write({"__key__": f"sample{i:04d}", p.suffix[1:]: p.read_bytes(), "txt": text})
    with tarfile.open(two) as t:
        last = [m for m in t.getmembers() if m.name == f"sample0003{clips[3][0].suffix}"][0]
        cut = last.offset_data + last.size // 2
    (OUT / "wds" / "truncated.tar").write_bytes(two.read_bytes()[:cut])
    two.unlink()
    if True:
        # gzip's header holds a time stamp: make it fixed as well.
        data = gzip.decompress((OUT / "wds" / "shard-000000.tar.gz").read_bytes())
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as g:
            g.write(data)
        (OUT / "wds" / "shard-000000.tar.gz").write_bytes(buf.getvalue())
    return keys


def make_lhotse(clips):
    from lhotse import CutSet, MonoCut, Recording, RecordingSet, SupervisionSegment, SupervisionSet

    d = OUT / "lhotse"
    d.mkdir()
    os.chdir(d)  # lhotse keeps paths as given: relative to the manifests' folder
    long = Recording.from_file("../clips/long.flac", recording_id="long")
    stereo = Recording.from_file(os.path.relpath(clips[1][0], d), recording_id="c1")
    sups = [
        SupervisionSegment(id="long-s0", recording_id="long", start=0.25, duration=1.0, text="the quick brown"),
        SupervisionSegment(id="long-s1", recording_id="long", start=1.5, duration=0.75, text="fox jumps"),
        SupervisionSegment(id="c1-s0", recording_id="c1", start=0.0, duration=0.5, text="good", channel=1),
    ]
    cuts = CutSet.from_cuts(
        [
            MonoCut(id="long-0", start=0.25, duration=1.0, channel=0, recording=long, supervisions=[sups[0]]),
            MonoCut(id="long-1", start=1.5, duration=0.75, channel=0, recording=long, supervisions=[sups[1]]),
            MonoCut(id="c1-right", start=0.0, duration=0.5, channel=1, recording=stereo, supervisions=[sups[2]]),
        ]
    )
    cuts.to_file(str(d / "cuts.jsonl.gz"))
    RecordingSet.from_recordings([long, stereo]).to_file(str(d / "recordings.jsonl.gz"))
    SupervisionSet.from_segments(sups).to_file(str(d / "supervisions.jsonl.gz"))
    # gzip time stamps: rewrite with a fixed one so reruns give the same bytes.
    for f in d.iterdir():
        data = gzip.decompress(f.read_bytes())
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as g:
            g.write(data)
        f.write_bytes(buf.getvalue())
    # What lhotse itself loads for each cut: the Rust test compares its samples to ours.
    # Stored as int16 (the clips are 16-bit, so lhotse's floats are exact multiples of 1/32768).
    import numpy as np

    loaded = {}
    blob = bytearray()
    for c in CutSet.from_file(str(d / "cuts.jsonl.gz")):
        x = c.load_audio()
        assert x.shape[0] == 1, x.shape
        q = x[0] * 32768.0
        assert np.array_equal(q, np.round(q)), c.id
        loaded[c.id] = {"offset": len(blob) // 2, "samples": int(x.shape[1])}
        blob += q.astype("<i2").tobytes()
    (d / "lhotse_loaded.i16").write_bytes(bytes(blob))
    return [c.to_dict() for c in cuts], loaded


def make_manifests(clips):
    rows = [
        ("clips/c0.flac", "", "", "hello world"),
        ("clips/long.flac", "0.5", "1.25", "brown fox"),
        ("clips/long.flac", "1.75", "", "the dog"),
        ("clips/missing.flac", "", "", "not there"),
        ("clips/c2.mp3", "", "", "one two three"),
    ]
    with open(OUT / "manifest.csv", "w", newline="") as f:
        import csv

        w = csv.writer(f)
        w.writerow(["path", "offset", "duration", "text"])
        w.writerows(rows)
    with open(OUT / "manifest.tsv", "w") as f:
        f.write("audio_filepath\toffset\tduration\ttext\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    with open(OUT / "manifest.jsonl", "w") as f:
        for p, off, dur, text in rows:
            rec = {"audio_filepath": p, "text": text}
            if off:
                rec["offset"] = float(off)
            if dur:
                rec["duration"] = float(dur)
            f.write(json.dumps(rec) + "\n")
    return rows


def main():
    check_versions()
    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    clips = make_clips(OUT / "clips")
    texts, speakers = make_parquet(clips)
    keys = make_wds(clips)
    cuts, lhotse_audio = make_lhotse(clips)
    rows = make_manifests(clips)
    expected = {
        "clips": [os.path.relpath(p, OUT) for p, _ in clips],
        "texts": texts,
        "speakers": speakers,
        "wds_keys": keys,
        "cuts": [{"id": c["id"], "start": c["start"], "duration": c["duration"], "channel": c["channel"],
                  "text": c["supervisions"][0]["text"]} for c in cuts],
        "lhotse_audio": lhotse_audio,
        "manifest_rows": rows,
    }
    (OUT / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file() and not f.is_symlink())
    print(f"wrote {OUT} ({total} bytes)")


if __name__ == "__main__":
    main()
