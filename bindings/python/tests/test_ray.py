"""audiotok.ray on a real local Ray cluster (2 CPUs): the operators and the sinks give what the
CLI's jobs give (token store records, MDS samples and merged index byte for byte), a stopped job
rerun gives the same store, and bad files land in the error column."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is in bindings/python/requirements-test.txt; tools/test_python.sh installs it")
pa = pytest.importorskip("pyarrow")

import audiotok  # noqa: E402
from audiotok import codecs, mds, tokens  # noqa: E402
from audiotok import ray as aray  # noqa: E402

from conftest import AUDIO, FIXTURES, ROOT  # noqa: E402

SNAC = FIXTURES / "snac" / "tiny24"
TOKENIZER = FIXTURES / "pack" / "qwen2-tokenizer"
CLIPS = ["speech_1s.wav", "speech_7s.flac", "speech_7s_44k_stereo.flac", "speech_0.1s.wav"]


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture()
def audio_dir(tmp_path):
    d = tmp_path / "audio"
    d.mkdir()
    for name in CLIPS:
        shutil.copy(AUDIO / name, d / name)
    (d / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return d


def items(paths):
    return [{"row": i, "path": p} for i, p in enumerate(paths)]


def table_of(ds):
    return pa.concat_tables([pa.Table.from_pandas(b) if not isinstance(b, pa.Table) else b
                             for b in ds.iter_batches(batch_format="pyarrow", batch_size=None)])


def test_decode_from_paths_and_bytes_equals_load_and_bad_files_land_in_error(audio_dir):
    paths = aray.list_audio(audio_dir)
    assert [Path(p).name for p in paths] == sorted(CLIPS + ["broken.wav"])
    ds = ray.data.from_items(items(paths)).map_batches(
        aray.Decode, fn_constructor_kwargs={"sampling_rate": 16000}, batch_format="pyarrow",
        concurrency=1, num_cpus=0.5, batch_size=2)
    t = table_of(ds).sort_by("row")
    assert t.schema.field("audio").type == pa.list_(pa.float32())
    for r in t.to_pylist():
        if r["path"].endswith("broken.wav"):
            assert r["audio"] is None and "broken.wav" in r["error"]
            continue
        want, sr = audiotok.load(r["path"], sr=16000)
        assert r["error"] is None and r["sampling_rate"] == sr == 16000
        np.testing.assert_array_equal(np.asarray(r["audio"], np.float32), want)
        assert r["num_samples"] == len(want)

    # read_binary_files: the encoded bytes decode in the actor; the bytes column is dropped.
    ds = ray.data.read_binary_files(str(audio_dir), include_paths=True).map_batches(
        aray.Decode, batch_format="pyarrow", concurrency=1, num_cpus=0.5)
    got = {Path(r["path"]).name: r for r in table_of(ds).to_pylist()}
    assert "bytes" not in next(iter(got.values()))
    np.testing.assert_array_equal(np.asarray(got["speech_7s.flac"]["audio"], np.float32),
                                  audiotok.load(AUDIO / "speech_7s.flac")[0])
    assert "broken.wav" in got["broken.wav"]["error"]


def test_whisper_features_and_token_counts_equal_the_library(audio_dir):
    paths = aray.list_audio(audio_dir)
    ds = (ray.data.from_items(items(paths))
          .map_batches(aray.Decode, batch_format="pyarrow", concurrency=1, num_cpus=0.5, batch_size=3)
          .map_batches(aray.WhisperFeatures, batch_format="pyarrow", concurrency=1, num_cpus=0.5)
          .map_batches(aray.CountTokens, fn_constructor_kwargs={"profile": "qwen2-audio"},
                       batch_format="pyarrow", concurrency=1, num_cpus=0.25))
    t = table_of(ds).sort_by("row")
    assert t.schema.field("input_features").type == pa.list_(pa.list_(pa.float32(), 3000), 128)
    fe = audiotok.WhisperFeatureExtractor(feature_size=128)
    for r in t.to_pylist():
        if r["error"] is not None:
            assert r["input_features"] is None and r["audio_tokens"] is None
            continue
        y, _ = audiotok.load(r["path"])
        want = fe(y, sampling_rate=16000)["input_features"][0]
        np.testing.assert_array_equal(np.asarray(r["input_features"], np.float32), want)
        assert r["audio_tokens"] == audiotok.count_tokens(r["path"], "qwen2-audio")
        assert r["feature_frames"] == min(3000, len(y) // 160)
    assert sum(r["error"] is not None for r in t.to_pylist()) == 1
    # Plain Arrow types: Parquet round-trips them.
    import pyarrow.parquet as pq
    buf = pa.BufferOutputStream()
    pq.write_table(t.drop_columns(["audio"]), buf)
    assert pq.read_table(pa.BufferReader(buf.getvalue())).schema.field("input_features").type == \
        t.schema.field("input_features").type


def snac_pipeline(paths, store, *, segment_seconds=1.0, skip=()):
    rows = [r for r in items(paths) if r["row"] not in skip]
    ds = (ray.data.from_items(rows)
          .map_batches(aray.Decode, fn_constructor_kwargs={"sampling_rate": None}, batch_format="pyarrow",
                       concurrency=1, num_cpus=0.5, batch_size=2)
          .map_batches(aray.SnacEncode, fn_constructor_kwargs={"model": str(SNAC), "segment_seconds": segment_seconds},
                       batch_format="pyarrow", concurrency=1, num_cpus=0.5, batch_size=2))
    sink = aray.TokenStoreDatasink(store, batch_size=4, model=str(SNAC))
    ds.write_datasink(sink)
    return sink


def records(path):
    t = tokens.read_table(path)
    return t.to_pylist()


def test_token_store_sink_holds_the_records_audiotok_encode_writes(audio_dir, tmp_path):
    paths = aray.list_audio(audio_dir)
    cli = codecs.encode_files(audio_dir, tmp_path / "cli", model=SNAC, segment_seconds=1.0, batch_size=4)
    store = tmp_path / "ray"
    snac_pipeline(paths, store)
    assert records(store) == records(tmp_path / "cli")
    meta = json.loads((store / "metadata.json").read_text())
    cli_meta = json.loads((tmp_path / "cli" / "metadata.json").read_text())
    for k in ("num_files", "total_duration_s", "scales", "batches", "files", "batch_size"):
        assert meta[k] == cli_meta[k], k
    assert not (store / "_parts").exists()
    rejects = [json.loads(line) for line in (store / "rejects.jsonl").read_text().splitlines()]
    failed = {Path(f["path"]).name for f in cli["failures"]}
    assert {Path(r["file_path"]).name for r in rejects} == failed and "broken.wav" in failed


def test_a_stopped_token_store_job_rerun_gives_the_same_store(audio_dir, tmp_path):
    paths = aray.list_audio(audio_dir)
    snac_pipeline(paths, tmp_path / "whole")
    # A driver killed after its first write task (on the same cluster): one part in place, no
    # store yet.
    store = tmp_path / "resumed"
    script = f"""
import time
import ray
from audiotok import ray as aray
ray.init(address={ray.get_runtime_context().gcs_address!r}, log_to_driver=False)
sink = aray.TokenStoreDatasink({str(store)!r}, batch_size=4, model={str(SNAC)!r})
class Slow:
    def __call__(self, b):
        if b.column("row")[0].as_py() > 1:
            time.sleep(600)
        return b
ds = (ray.data.from_items([{{"row": i, "path": p}} for i, p in enumerate({paths!r})], override_num_blocks=3)
      .map_batches(aray.Decode, fn_constructor_kwargs={{"sampling_rate": None}}, batch_format="pyarrow", batch_size=2, concurrency=1, num_cpus=0.5)
      .map_batches(aray.SnacEncode, fn_constructor_kwargs={{"model": {str(SNAC)!r}, "segment_seconds": 1.0}}, batch_format="pyarrow", batch_size=2, concurrency=1, num_cpus=0.5)
      .map_batches(Slow, batch_format="pyarrow", batch_size=2, concurrency=1, num_cpus=0.5))
ds.write_datasink(sink)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and not aray.done_rows(store):
            time.sleep(0.5)
    finally:
        proc.kill()
        proc.wait()
    done = aray.done_rows(store)
    assert done and len(done) < len(paths), done
    assert not (store / "metadata.json").exists()
    snac_pipeline(paths, store, skip=done)
    assert records(store) == records(tmp_path / "whole")
    assert (store / "metadata.json").read_bytes() == (tmp_path / "whole" / "metadata.json").read_bytes()
    for b in sorted(store.glob("tokens_batch_*.parquet")):
        assert b.read_bytes() == (tmp_path / "whole" / b.name).read_bytes(), b.name


def test_mds_sink_parts_merge_into_one_dataset_as_the_cli_merges(tmp_path):
    rows = [{"row": i, "id": i, "text": f"sample {i} " * (i % 5 + 1), "ids": list(range(i, i + 7))}
            for i in range(40)]
    columns = {"id": "int", "text": "str", "ids": "ndarray:int32"}
    ds = ray.data.from_items(rows, override_num_blocks=3)
    sink = aray.MdsDatasink(tmp_path / "ray", columns=columns, size_limit=1 << 10)
    ds.write_datasink(sink)
    parts = sorted(p.name for p in (tmp_path / "ray").iterdir() if p.is_dir())
    assert len(parts) >= 2 and sink.shards >= len(parts)
    # The same partitions written by the library writer, then merged as `audiotok mds merge`
    # merges an index.
    for part in parts:
        first = int(part.split("-")[1])
        n = sum(1 for _ in (tmp_path / "ray" / part).glob("shard.*"))
        assert n >= 1
        with mds.MdsWriter(out=tmp_path / "lib" / part, columns=columns, size_limit=1 << 10) as w:
            got = mds.MdsDataset(tmp_path / "ray" / part)
            for i in range(len(got)):
                r = rows[got[i]["id"]]
                w.write({"id": r["id"], "text": r["text"], "ids": np.asarray(r["ids"], np.int32)})
        assert got[0]["id"] == first
    mds.merge_index(tmp_path / "lib")
    for f in sorted((tmp_path / "ray").rglob("*")):
        if f.is_file():
            assert f.read_bytes() == (tmp_path / "lib" / f.relative_to(tmp_path / "ray")).read_bytes(), f
    ds_all = mds.MdsDataset(tmp_path / "ray")
    assert sorted(ds_all[i]["id"] for i in range(len(ds_all))) == list(range(40))
    np.testing.assert_array_equal(ds_all[0]["ids"].dtype, np.int32)


@pytest.mark.skipif(not (TOKENIZER / "vocab.json").is_file(), reason="run tools/fetch_qwen_tokenizer.sh")
def test_pack_sink_packs_each_partition_as_audiotok_pack_does(tmp_path):
    lines = (FIXTURES / "pack" / "rows.jsonl").read_text().splitlines()
    good = []
    for line in lines:
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if "text" in r:
            a = r.get("audio")
            good.append({"text": r["text"], "audio": a if isinstance(a, list) else ([a] if a else [])})
    rows = [dict(r, row=i) for i, r in enumerate(good * 3)]
    ds = ray.data.from_items(rows, override_num_blocks=2)
    sink = aray.PackDatasink(tmp_path / "ray", tokenizer=TOKENIZER, audio_root=ROOT, block_size=512,
                             strategy="bfd")
    ds.write_datasink(sink)
    parts = sorted(p.name for p in (tmp_path / "ray").iterdir() if p.is_dir())
    assert len(parts) == 2
    bounds = [int(p.split("-")[1]) for p in parts] + [len(rows)]
    for k, part in enumerate(parts):
        mine = [{kk: v for kk, v in r.items() if kk != "row"} for r in rows[bounds[k]:bounds[k + 1]]]
        audiotok.pack(mine, tokenizer=TOKENIZER, out=tmp_path / "lib" / part, audio_root=ROOT, block_size=512,
                      strategy="bfd")
    mds.merge_index(tmp_path / "lib")
    for f in sorted((tmp_path / "lib").rglob("*")):
        if f.is_file() and f.name != "rejects.jsonl":
            assert f.read_bytes() == (tmp_path / "ray" / f.relative_to(tmp_path / "lib")).read_bytes(), f
    total = mds.MdsDataset(tmp_path / "ray")
    assert len(total) == sum(len(mds.MdsDataset(tmp_path / "ray" / p)) for p in parts)


@pytest.mark.skipif(not (TOKENIZER / "vocab.json").is_file(), reason="run tools/fetch_qwen_tokenizer.sh")
def entry(*args):
    """`python -m audiotok.ray ARGS` on this cluster."""
    import os

    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address)
    return subprocess.run([sys.executable, "-m", "audiotok.ray", *args], env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_pipeline_entry_point_writes_a_store_and_packed_shards(audio_dir, tmp_path):
    run = entry
    got = run("tokens", str(audio_dir), "--model", str(SNAC), "--out", str(tmp_path / "store"), "--segment-seconds", "1")
    summary = json.loads(got.stdout.strip().splitlines()[-1])
    assert got.returncode == 1 and summary["rejects"] == 1 and summary["files"] == len(CLIPS) + 1
    codecs.encode_files(audio_dir, tmp_path / "cli", model=SNAC, segment_seconds=1.0)
    assert records(tmp_path / "store") == records(tmp_path / "cli")
    got = run("pack", str(FIXTURES / "pack" / "rows.jsonl"), "--tokenizer", str(TOKENIZER), "--out",
              str(tmp_path / "mds"), "--audio-root", str(ROOT), "--partitions", "1")
    assert got.returncode == 0, got.stderr[-2000:]
    summary = json.loads(got.stdout.strip().splitlines()[-1])
    assert summary["malformed_lines"][0]["line"] == 6 and summary["parts"] == 1
    # One partition: exactly what `audiotok pack` writes from the same file, in a part.
    audiotok.pack(FIXTURES / "pack" / "rows.jsonl", tokenizer=TOKENIZER, out=tmp_path / "lib", audio_root=ROOT)
    part = next(p for p in (tmp_path / "mds").iterdir() if p.is_dir())
    for f in sorted((tmp_path / "lib").iterdir()):
        if f.name not in ("rejects.jsonl", "index.json"):
            assert (part / f.name).read_bytes() == f.read_bytes(), f.name


def test_embed_equals_the_encoder_and_writes_plain_arrow(audio_dir, tmp_path):
    from audiotok import encoders

    model = FIXTURES / "embed" / "hubert_group"
    paths = aray.list_audio(audio_dir)
    ds = (ray.data.from_items(items(paths))
          .map_batches(aray.Decode, fn_constructor_kwargs={"sampling_rate": None}, batch_format="pyarrow",
                       concurrency=1, num_cpus=0.5, batch_size=2)
          .map_batches(aray.Embed, fn_constructor_kwargs={"model": str(model), "layers": [0, 2], "drop_audio": True},
                       batch_format="pyarrow", concurrency=1, num_cpus=0.5, batch_size=3))
    t = table_of(ds).sort_by("row")
    typ = t.schema.field("embedding_0").type
    assert typ.value_type.list_size == encoders.Encoder(model).describe()["dim"]
    assert typ == pa.list_(pa.list_(pa.float32(), typ.value_type.list_size)) and "audio" not in t.column_names
    enc = encoders.Encoder(model)
    errors = {}
    for r in t.to_pylist():
        name = Path(r["path"]).name
        if r["error"] is not None:
            errors[name] = r["error"]
            assert r["embedding_0"] is None and r["embedding_frames"] is None
            continue
        # Decoded at the file's own rate and resampled in the operator, as Encoder.embed does.
        y, sr = audiotok.load(r["path"], sr=None)
        want = enc.embed(y, sampling_rate=sr, layers=[0, 2])
        for k, col in enumerate(["embedding_0", "embedding_2"]):
            np.testing.assert_array_equal(np.asarray(r[col], np.float32), want[k])
        assert r["embedding_frames"] == want.shape[1]
    # broken.wav fails decoding; the 0.1 s clip (1600 samples) is long enough for HuBERT.
    assert set(errors) == {"broken.wav"}, errors

    # The pipeline entry: the same rows in Parquet, and the failure counted.
    got = entry("embed", str(audio_dir), "--model", str(model), "--out", str(tmp_path / "entry"), "--layers", "0,2")
    assert got.returncode == 1, got.stderr[-2000:]
    summary = json.loads(got.stdout.strip().splitlines()[-1])
    assert (summary["files"], summary["embedded"], summary["errors"]) == (len(paths), len(paths) - 1, 1)
    import pyarrow.parquet as pq
    back = pq.read_table(str(tmp_path / "entry")).sort_by("row")
    assert back.column("embedding_2").to_pylist() == t.column("embedding_2").to_pylist()

    # Mean pooling gives one fixed-size vector per row; Parquet reads the columns back.
    good = [p for p in paths if Path(p).name != "broken.wav"][:2]
    ds = (ray.data.from_items(items(good))
          .map_batches(aray.Decode, batch_format="pyarrow", concurrency=1, num_cpus=0.5)
          .map_batches(aray.Embed, fn_constructor_kwargs={"model": str(model), "pool": "mean"},
                       batch_format="pyarrow", concurrency=1, num_cpus=0.5))
    ds.write_parquet(str(tmp_path / "pq"))
    back = pq.read_table(str(tmp_path / "pq")).sort_by("row")
    dim = enc.describe()["dim"]
    assert back.schema.field("embedding").type == pa.list_(pa.float32(), dim)
    for r in back.to_pylist():
        y, _ = audiotok.load(r["path"])
        np.testing.assert_array_equal(np.asarray(r["embedding"], np.float32), enc.embed(y, pool="mean"))


def test_bsq_encode_and_sink_write_the_store_audiotok_bsq_encode_writes(audio_dir, tmp_path):
    from audiotok import bsq

    from conftest import BSQ_CONFIG

    train = tmp_path / "train"
    train.mkdir()
    for name in CLIPS[:3]:
        shutil.copy(AUDIO / name, train / name)
    run = tmp_path / "run"
    bsq.train(BSQ_CONFIG, train, run)
    # A silent clip: the CLI rejects it, the operator puts the same reason in `error`.
    silence = np.zeros(8000, np.int16)
    import wave
    with wave.open(str(audio_dir / "silent.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(silence.tobytes())
    cli = bsq.encode_files(audio_dir, tmp_path / "cli", model=run, batch_size=4)
    assert cli["files"] == len(CLIPS) and len(cli["rejects"]) == 2
    paths = aray.list_audio(audio_dir)
    ds = (ray.data.from_items(items(paths))
          .map_batches(aray.Decode, fn_constructor_kwargs={"sampling_rate": None}, batch_format="pyarrow",
                       concurrency=1, num_cpus=0.5, batch_size=2)
          .map_batches(aray.BsqEncode, fn_constructor_kwargs={"model": str(run)}, batch_format="pyarrow",
                       concurrency=1, num_cpus=0.5, batch_size=3))
    store = tmp_path / "ray"
    sink = aray.TokenStoreDatasink(store, batch_size=4, bsq=run)
    ds.write_datasink(sink)
    assert records(store) == records(tmp_path / "cli")
    meta = json.loads((store / "metadata.json").read_text())
    cli_meta = json.loads((tmp_path / "cli" / "metadata.json").read_text())
    for k in ("num_files", "total_duration_s", "scales", "batches", "files", "batch_size", "provenance"):
        assert meta[k] == cli_meta[k], k
    rejects = {Path(r["file_path"]).name: r["error"] for r in
               (json.loads(line) for line in (store / "rejects.jsonl").read_text().splitlines())}
    assert set(rejects) == {"broken.wav", "silent.wav"}
    assert "silent (peak" in rejects["silent.wav"]
    cli_reasons = {Path(r["input"]).name: r["reason"] for r in cli["rejects"]}
    assert cli_reasons["silent.wav"] in rejects["silent.wav"]
    # The pipeline entry writes the same store.
    got = entry("bsq", str(audio_dir), "--model", str(run), "--out", str(tmp_path / "entry"), "--batch-size", "4")
    assert got.returncode == 1, got.stderr[-2000:]
    summary = json.loads(got.stdout.strip().splitlines()[-1])
    assert (summary["records"], summary["rejects"]) == (len(CLIPS), 2)
    assert records(tmp_path / "entry") == records(tmp_path / "cli")
