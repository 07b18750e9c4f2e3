#!/usr/bin/env python3
"""Reads an MDS dataset (e.g. one audiotok-mds wrote) with the real `streaming` package and checks
every sample against expected values.

    tmp/venv-mds/bin/python tools/check_mds_with_streaming.py DATASET_DIR EXPECTED_JSON

EXPECTED_JSON: {"columns": {name: encoding}, "samples": [{name: value}, ...]} with values in the
JSON form of tools/mds_values.py. The dataset is read with
StreamingDataset(local=<copy of DATASET_DIR>, remote=None, shuffle=False) (a copy, because
streaming decompresses shards into its local folder); the sizes and hashes of the files listed in
index.json are checked with streaming's own hashing. Exits 1 on any mismatch.
Needs the venv of tools/requirements-mds.txt (mosaicml-streaming 0.13.0).
"""

import json
import os
import shutil
import sys
import tempfile

from streaming import StreamingDataset
from streaming.base.hashing import get_hash

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mds_values import to_repr  # noqa: E402


def check_files(root):
    """Sizes and hashes of every file index.json lists; returns the number of hashes checked."""
    with open(os.path.join(root, 'index.json')) as f:
        index = json.load(f)
    checked = 0
    for shard in index['shards']:
        for key in ('raw_data', 'zip_data'):
            info = shard.get(key)
            if not info:
                continue
            path = os.path.join(root, info['basename'])
            if key == 'raw_data' and shard.get('zip_data') and not os.path.exists(path):
                continue  # compressed shards have only their .zstd form on disk
            with open(path, 'rb') as f:
                data = f.read()
            if len(data) != info['bytes']:
                raise SystemExit(f'{path}: {len(data)} bytes, index says {info["bytes"]}')
            for algo, want in info['hashes'].items():
                got = get_hash(algo, data)
                if got != want:
                    raise SystemExit(f'{path}: {algo} {got} != index {want}')
                checked += 1
    return checked


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    root, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)
    columns = expected['columns']
    want = expected['samples']
    hashes = check_files(root)
    mismatches = 0
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, 'ds')
        shutil.copytree(root, local)
        ds = StreamingDataset(local=local, remote=None, shuffle=False, batch_size=1)
        if len(ds) != len(want):
            raise SystemExit(f'{root}: StreamingDataset has {len(ds)} samples, expected {len(want)}')
        for i in range(len(ds)):
            row = ds[i]
            if set(row) != set(columns):
                print(f'sample {i}: columns {sorted(row)} != {sorted(columns)}')
                mismatches += 1
                continue
            for name, enc in columns.items():
                got = json.dumps(to_repr(enc, row[name]))
                exp = json.dumps(want[i][name])
                if got != exp:
                    print(f'sample {i} column {name} ({enc}): got {got[:200]} expected {exp[:200]}')
                    mismatches += 1
        del ds
    if mismatches:
        raise SystemExit(f'{root}: {mismatches} mismatches')
    print(f'{root}: OK, {len(want)} samples x {len(columns)} columns match; {hashes} file hashes verified')


if __name__ == '__main__':
    main()
