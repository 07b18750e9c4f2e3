"""Spark as the second engine over the same Python API: the audiotok.ray operators are plain
callables on ``pyarrow.Table``, so ``DataFrame.mapInArrow`` runs them per Arrow batch; MDS parts
are written per Spark partition with ``audiotok.mds.MdsWriter`` and merged with
``audiotok.mds.merge_index`` as ``audiotok mds merge`` merges them. A real local Spark (JVM)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pyspark = pytest.importorskip(
    "pyspark", reason="pyspark is in bindings/python/requirements-test.txt; tools/test_python.sh installs it"
)
pa = pytest.importorskip("pyarrow")

if shutil.which("java") is None:  # pragma: no cover - .ci/run installs a JRE
    pytest.skip("Spark needs a Java runtime (openjdk-17-jre-headless)", allow_module_level=True)

import audiotok  # noqa: E402
from audiotok import mds  # noqa: E402
from audiotok import ray as aray  # noqa: E402
from audiotok import spark as aspark  # noqa: E402

from conftest import AUDIO  # noqa: E402

CLIPS = ["speech_1s.wav", "speech_7s.flac", "speech_7s_44k_stereo.flac", "speech_0.1s.wav"]


@pytest.fixture(scope="module")
def spark():
    import os
    import sys

    from pyspark.sql import SparkSession

    # The workers run this interpreter (the venv where audiotok is installed).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    s = (
        SparkSession.builder.master("local[2]")
        .appName("audiotok-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


def test_map_in_arrow_runs_the_operators_as_the_library_computes(spark, tmp_path):
    for name in CLIPS:
        shutil.copy(AUDIO / name, tmp_path / name)
    (tmp_path / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    paths = aray.list_audio(tmp_path)
    df = spark.createDataFrame([(i, p) for i, p in enumerate(paths)], "row long, path string").repartition(2)
    fn = aspark.Stages((aray.Decode, {"sampling_rate": 16000}), (aray.CountTokens, {"profile": "qwen2-audio"}),
                       select=["row", "path", "num_samples", "audio_tokens", "error"])
    out = df.mapInArrow(fn, "row long, path string, num_samples long, audio_tokens long, error string")
    got = {r["path"]: r for r in (row.asDict() for row in out.collect())}
    assert sorted(got) == sorted(paths)
    for p, r in got.items():
        if Path(p).name == "broken.wav":
            assert r["error"] is not None and "broken.wav" in r["error"] and r["audio_tokens"] is None
            continue
        y, _ = audiotok.load(p, sr=16000)
        assert r["error"] is None and r["num_samples"] == len(y)
        assert r["audio_tokens"] == audiotok.count_tokens(p, "qwen2-audio")


def test_mds_parts_per_partition_merge_into_one_dataset(spark, tmp_path):
    rows = [(i, f"sample {i} " * (i % 5 + 1), list(range(i, i + 7))) for i in range(40)]
    columns = {"id": "int", "text": "str", "ids": "ndarray:int32"}
    df = spark.createDataFrame(rows, "id long, text string, ids array<int>").repartitionByRange(3, "id")
    writer = aspark.MdsParts(tmp_path / "spark", columns, order_by="id", size_limit=1 << 10)
    parts = df.mapInArrow(writer, aspark.MdsParts.SCHEMA).collect()
    assert len(parts) == 3 and sum(p["rows"] for p in parts) == 40
    shards = mds.merge_index(tmp_path / "spark")
    assert shards >= 3
    # The same partitions written in one process and merged: the same bytes, file for file.
    for p in parts:
        name = Path(p["part"]).name
        got = mds.MdsDataset(p["part"])
        ids = [got[i]["id"] for i in range(len(got))]
        with mds.MdsWriter(out=tmp_path / "lib" / name, columns=columns, size_limit=1 << 10) as w:
            for i in ids:
                w.write({"id": i, "text": rows[i][1], "ids": np.asarray(rows[i][2], np.int32)})
    mds.merge_index(tmp_path / "lib")
    for f in sorted((tmp_path / "spark").rglob("*")):
        if f.is_file():
            assert f.read_bytes() == (tmp_path / "lib" / f.relative_to(tmp_path / "spark")).read_bytes(), f
    whole = mds.MdsDataset(tmp_path / "spark")
    assert sorted(whole[i]["id"] for i in range(len(whole))) == list(range(40))
