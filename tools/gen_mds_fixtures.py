#!/usr/bin/env python3
"""Writes the MDS golden fixtures in tests/fixtures/mds/ with the real `streaming` package.

Reference: mosaicml-streaming==0.13.0 (asserted below), with the zstd==1.5.7.2 and xxhash==3.8.2
Python packages (libzstd 1.5.7) and numpy 2.1.3; see tools/requirements-mds.txt. streaming needs
torch, so it gets its own venv (never the golden .venv, which must stay torch-free):

    python3 -m venv tmp/venv-mds && tmp/venv-mds/bin/pip install -r tools/requirements-mds.txt
    tmp/venv-mds/bin/python tools/gen_mds_fixtures.py

Output (all committed; the Rust tests in crates/audiotok-mds/tests/ need no Python):
  <dataset>/index.json, <dataset>/shard.*      written by streaming.MDSWriter
  partitioned/<part>/...                       three partitions, and partitioned/index.json
                                               written by streaming.base.util.merge_index(root)
  expected.json                                per dataset: columns, writer options, the samples
                                               given to MDSWriter ("samples") and what
                                               StreamingDataset reads back ("decoded"), in the
                                               JSON form of tools/mds_values.py
  float_repr.json                              [float64 bits, repr(float)] pairs
Rerunning rewrites everything with identical bytes.
"""

import json
import os
import random
import shutil
import struct
import sys
import tempfile
from decimal import Decimal

import numpy as np
import streaming
from streaming import MDSWriter, StreamingDataset
from streaming.base.util import merge_index

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mds_values import float_bits, from_repr, to_repr  # noqa: E402

STREAMING_VERSION = '0.13.0'
assert streaming.__version__ == STREAMING_VERSION, streaming.__version__

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tests', 'fixtures', 'mds')


def nd(dtype, shape, values):
    arr = np.array(values, dtype=dtype).reshape(shape)
    return to_repr('ndarray', arr)


def f(x):
    return float_bits(x)


# Every encoding; column names are deliberately unsorted, with uppercase and non-ASCII names.
ALL_TYPES_COLUMNS = {
    'i8': 'int8',
    'i16': 'int16',
    'i32': 'int32',
    'i64': 'int64',
    'u8': 'uint8',
    'u16': 'uint16',
    'u32': 'uint32',
    'u64': 'uint64',
    'int': 'int',
    'f16': 'float16',
    'f32': 'float32',
    'f64': 'float64',
    'si': 'str_int',
    'sf': 'str_float',
    'sd': 'str_decimal',
    'b': 'bytes',
    's': 'str',
    'j': 'json',
    'nd': 'ndarray',
    'nd_i32': 'ndarray:int32',
    'nd_f32_2x3': 'ndarray:float32:2,3',
    'nd_u8_4': 'ndarray:uint8:4',
    'Zulu': 'uint8',
    'na\u00efve \u00e9t\u00e9': 'str',
}

HALF_TIE_PLUS = 1.0 + 2.0**-11 + 2.0**-40  # rounds to 1+2^-10 directly, to 1.0 via float32

ALL_TYPES_ROWS = [
    # i8, i16, i32, i64, u8, u16, u32, u64, int, f16, f32, f64, si, sf, sd, b, s, j, nd, nd_i32, nd_f32, nd_u8
    (0, 0, 0, 0, 0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0, 0.0, '0', '', '', None,
     nd('uint8', [3], [1, 2, 3]), nd('int32', [4], [1, -2, 3, -4]),
     nd('float32', [2, 3], [0, 1, 2, 3, 4, 5]), nd('uint8', [4], [0, 1, 254, 255])),
    (127, 32767, 2147483647, 9223372036854775807, 255, 65535, 4294967295, 18446744073709551615,
     9223372036854775807, 65504.0, 3.4028234663852886e38, 1.7976931348623157e308, 2**70, 1e16,
     '12345678901234567890.5', 'ff00', 'h\u00e9llo \U0001f600', {'b': 1, 'a': [1, 2.5, None, True], 'c': {'z': 'y'}},
     nd('int16', [2, 2], [-1, 2, -3, 4]), nd('int32', [2, 3], [1, 2, 3, 4, 5, 6]),
     nd('float32', [2, 3], [0.1, -0.0, 1e-45, 3.4e38, -1, 7]), nd('uint8', [4], [9, 9, 9, 9])),
    (-128, -32768, -2147483648, -9223372036854775808, 1, 1, 1, 1, -9223372036854775808, -0.0, -0.0, -0.0,
     -(2**65), -0.0, '-0.000001', '00', 'line\nbreak\ttab "quoted" \\ back', [1, 'two', 3.0, -4.5e-300],
     nd('float16', [5], [0.5, -1, 65504, 0.0001, 6e-8]), nd('int32', [1, 1, 1, 1], [42]),
     nd('float32', [2, 3], [1, 1, 1, 1, 1, 1]), nd('uint8', [4], [1, 2, 3, 4])),
    (-1, -1, -1, -1, 128, 32768, 2147483648, 9223372036854775808, -1, 0.1, 0.1, 0.1, 2**63, 0.1, '1.10',
     '000102fe', '\u0001\u001f\u007f\u0080', {'nan': float('nan'), 'inf': float('inf'), 'ninf': float('-inf')},
     nd('float32', [2, 3, 1], [1.5, -2.5, 3.25, 0, 1e-40, -7]), nd('int32', [3], [0, 0, 0]),
     nd('float32', [2, 3], [9, 8, 7, 6, 5, 4]), nd('uint8', [4], [255, 0, 255, 0])),
    (5, 300, 70000, 5000000000, 7, 300, 70000, 5000000000, 5000000000, HALF_TIE_PLUS, HALF_TIE_PLUS,
     HALF_TIE_PLUS, 42, 1e-05, '1E+3', 'deadbeef', 'plain ascii', 'just a string',
     nd('int64', [1], [-5]), nd('int32', [2, 2], [7, 8, 9, 10]),
     nd('float32', [2, 3], [0.5, 0.25, 0.125, 0, 0, 0]), nd('uint8', [4], [10, 20, 30, 40])),
    (-5, -300, -70000, -5000000000, 200, 40000, 3000000000, 12345678901234567890, 123, 65520.0,
     float('inf'), float('inf'), -1, float('inf'), 'NaN', '7f', '\u00ff\u0100\uffff', 1234567890123456789012345,
     nd('uint64', [2], [0, 18446744073709551615]), nd('int32', [1], [-1]),
     nd('float32', [2, 3], [-1, -2, -3, -4, -5, -6]), nd('uint8', [4], [5, 6, 7, 8])),
    (100, 1000, 100000, 10**15, 100, 1000, 100000, 10**15, 10**15, 1e-7, 1e-40, 5e-324, 10**30,
     5e-324, '-Infinity', '', 'x' * 40, {'nested': {'deeper': {'deepest': [[], {}, [[]]]}}, '': 0},
     nd('float64', [300], [i * 0.5 for i in range(300)]), nd('int32', [5], [1, 1, 2, 3, 5]),
     nd('float32', [2, 3], [3, 1, 4, 1, 5, 9]), nd('uint8', [4], [2, 7, 1, 8])),
    (3, 3, 3, 3, 3, 3, 3, 3, 3, float('nan'), float('nan'), float('nan'), 3, float('nan'), '1E-7',
     'aa' * 10, '\U0010ffff', False,
     nd('int8', [2, 2, 2], [-1, 1, -2, 2, -3, 3, -4, 4]), nd('int32', [2], [2**31 - 1, -2**31]),
     nd('float32', [2, 3], [0, 0, 0, 0, 0, 1]), nd('uint8', [4], [3, 3, 3, 3])),
]


def all_types_samples():
    names = list(ALL_TYPES_COLUMNS)
    samples = []
    for k, row in enumerate(ALL_TYPES_ROWS):
        assert len(row) == 22, (k, len(row))
        sample = {}
        for name, value in zip(names[:22], row):
            enc = ALL_TYPES_COLUMNS[name]
            kind = enc.split(':')[0]
            if kind in ('float16', 'float32', 'float64', 'str_float'):
                value = f(value)
            sample[name] = value
        sample['Zulu'] = k
        sample['na\u00efve \u00e9t\u00e9'] = f'sample {k} \u00e9'
        samples.append(sample)
    return samples


def small_samples(n, seed):
    """Samples for the compressed / sharded datasets: columns id, text, nd, meta."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        length = rng.randrange(1, 40)
        out.append({
            'id': i,
            'text': ' '.join(rng.choice(['alpha', 'beta', 'gamma', 'delta', '\u00e9cho']) for _ in range(length)),
            'nd': to_repr('ndarray', np.arange(rng.randrange(1, 30), dtype=np.float32) * 0.5),
            'meta': {'i': i, 'tags': ['t%d' % (i % 3)], 'score': round(rng.random(), 6)},
        })
    return out


SMALL_COLUMNS = {'id': 'int32', 'text': 'str', 'nd': 'ndarray', 'meta': 'json'}


class Lcg:
    """64-bit LCG (Knuth's MMIX constants); crates/audiotok-mds/tests reimplements it."""

    def __init__(self, seed):
        self.state = seed

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % 2**64
        return self.state >> 33


def lcg_blobs(seed, sizes):
    """Moderately compressible blobs: copies out of a 2 KiB random block, 2% random letters."""
    rng = Lcg(seed)
    block = bytes(rng.next() & 0xFF for _ in range(2048))
    blobs = []
    for size in sizes:
        parts = []
        n = 0
        while n < size:
            if rng.next() % 100 < 2:
                part = bytes(65 + rng.next() % 32 for _ in range(1 + rng.next() % 39))
            else:
                o = rng.next() % 1024
                part = block[o:o + 16 + rng.next() % 1008]
            parts.append(part)
            n += len(part)
        blobs.append(b''.join(parts)[:size])
    return blobs


LARGE_SIZES = [70000 + 1000 * i for i in range(10)]
LARGE_COLUMNS = {'blob': 'bytes', 'wide': 'ndarray'}


def large_samples(blobs):
    # 'wide': uint8 array of shape (1, 65536 + i) holding the blob's first bytes.
    return [{'blob': b, 'wide': np.frombuffer(b[:65536 + i], np.uint8).reshape(1, 65536 + i)}
            for i, b in enumerate(blobs)]


def to_python(columns, samples):
    return [{name: from_repr(enc, s[name]) for name, enc in columns.items()} for s in samples]


def write(path, columns, samples, options, py_samples=None):
    if os.path.exists(path):
        shutil.rmtree(path)
    py = py_samples if py_samples is not None else to_python(columns, samples)
    with MDSWriter(out=path, columns=columns, **options) as w:
        for s in py:
            w.write(s)


def read_back(path, columns):
    """Decoded samples through StreamingDataset, from a copy (it decompresses into local)."""
    with tempfile.TemporaryDirectory() as tmp:
        local = os.path.join(tmp, 'ds')
        shutil.copytree(path, local)
        ds = StreamingDataset(local=local, remote=None, shuffle=False, batch_size=1)
        out = []
        for i in range(len(ds)):
            row = ds[i]
            out.append({name: to_repr(columns[name], row[name]) for name in columns})
        del ds
    return out


def options_json(options):
    return {
        'compression': options.get('compression'),
        'hashes': options.get('hashes', []),
        'size_limit': options.get('size_limit', 1 << 26),
    }


def main():
    os.makedirs(ROOT, exist_ok=True)
    expected = {'streaming_version': STREAMING_VERSION, 'datasets': {}}

    def dataset(name, columns, samples, options, py_samples=None, generator=None):
        path = os.path.join(ROOT, name)
        write(path, columns, samples, options, py_samples)
        entry = {'columns': columns, 'options': options_json(options)}
        decoded = read_back(path, columns)
        if generator is None:
            entry['samples'] = samples
            entry['decoded'] = decoded
        else:
            entry['generator'] = generator
            assert [to_repr(columns[c], s[c]) for s in py_samples for c in columns] == \
                [d[c] for d in decoded for c in columns]
        expected['datasets'][name] = entry

    dataset('all_types', ALL_TYPES_COLUMNS, all_types_samples(), {})
    dataset('zstd', SMALL_COLUMNS, small_samples(12, 1),
            {'compression': 'zstd', 'size_limit': 1500})
    dataset('zstd7_hashed', SMALL_COLUMNS, small_samples(9, 2),
            {'compression': 'zstd:7', 'hashes': ['sha1', 'xxh64'], 'size_limit': 2000})
    # The first sample alone exceeds size_limit: streaming writes an empty shard.00000.mds first.
    dataset('multi_shard', SMALL_COLUMNS, small_samples(10, 3), {'size_limit': 300})
    dataset('hashed', SMALL_COLUMNS, small_samples(6, 4), {'hashes': ['sha1', 'xxh64'], 'size_limit': None})
    # Generated samples (not listed in expected.json): a shard of about 1.4 MB, past the size
    # where libzstd's multi-threaded mode (which python-zstd uses) differs from single-threaded,
    # and 'wide' arrays whose dimension needs a uint32 shape header.
    blobs = lcg_blobs(7, LARGE_SIZES)
    dataset('zstd_large', LARGE_COLUMNS, None, {'compression': 'zstd'},
            py_samples=large_samples(blobs),
            generator={'kind': 'lcg_blobs', 'seed': 7, 'sizes': LARGE_SIZES})

    # Partitions in sub-folders, merged by streaming.
    root = os.path.join(ROOT, 'partitioned')
    if os.path.exists(root):
        shutil.rmtree(root)
    os.makedirs(root)
    parts = {
        'part10': (small_samples(4, 10), {}),
        'part2': (small_samples(5, 11), {'compression': 'zstd', 'hashes': ['sha1']}),
        'part_a': (small_samples(6, 12), {'hashes': ['xxh64'], 'size_limit': 600}),
    }
    part_entries = {}
    for pname, (samples, options) in parts.items():
        write(os.path.join(root, pname), SMALL_COLUMNS, samples, options)
        part_entries[pname] = {'columns': SMALL_COLUMNS, 'options': options_json(options), 'samples': samples}
    merge_index(root)
    expected['datasets']['partitioned'] = {
        'partitions': part_entries,
        'columns': SMALL_COLUMNS,
        'decoded': read_back(root, SMALL_COLUMNS),
    }

    # A pickle column: our reader must refuse it.
    pkl_path = os.path.join(ROOT, 'pkl')
    if os.path.exists(pkl_path):
        shutil.rmtree(pkl_path)
    with MDSWriter(out=pkl_path, columns={'id': 'int', 'obj': 'pkl'}) as w:
        w.write({'id': 1, 'obj': {'a': 1}})
    expected['datasets']['pkl'] = {'columns': {'id': 'int', 'obj': 'pkl'}, 'reject': True}

    with open(os.path.join(ROOT, 'expected.json'), 'w') as out:
        json.dump(expected, out, indent=1, ensure_ascii=False)
        out.write('\n')

    # repr(float) for special and random float64 values.
    rng = random.Random(2024)
    values = [0.0, -0.0, 1.0, 0.1, 1e16, 1e15, 9999999999999998.0, 1e-4, 1e-5, 5e-324, 1.7976931348623157e308,
              2.2250738585072014e-308, 123456789.125, 0.3, 2.0**63, 1e22, 1e23, 4.35, 100.0, 1.5e-7]
    for _ in range(200):
        bits = rng.getrandbits(64)
        x = struct.unpack('>d', bits.to_bytes(8, 'big'))[0]
        if x == x and abs(x) != float('inf'):
            values.append(x)
    for _ in range(150):
        values.append(round(rng.uniform(-1, 1) * 10**rng.randrange(-12, 20), rng.randrange(0, 12)))
    pairs = [[float_bits(x), repr(x)] for x in values]
    with open(os.path.join(ROOT, 'float_repr.json'), 'w') as out:
        json.dump(pairs, out, indent=0)
        out.write('\n')
    print('wrote', ROOT)


if __name__ == '__main__':
    main()
