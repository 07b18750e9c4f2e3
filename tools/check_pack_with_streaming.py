#!/usr/bin/env python3
"""Runs the built `audiotok pack` in every mode and checks its output with the real `streaming` package
against an independent Python computation.

    tools/fetch_qwen_tokenizer.sh
    cargo build --release -p audiotok-cli
    tmp/venv-pack/bin/python tools/check_pack_with_streaming.py [--audiotok target/release/audiotok]
        [--rows tests/fixtures/pack/rows.jsonl ...] [--block-sizes 4096,512] [--jobs 1,2]

For every block size, strategy (greedy, bfd), layout (standard with --train-on all and assistant;
--compat cooking) and --lengths (header, decode), and for every --jobs value, it runs

    audiotok pack --profile qwen2-audio --tokenizer tests/fixtures/pack/qwen2-tokenizer \\
        --block-size B --strategy S [--compat cooking | --train-on T] --lengths L --jobs J --json --out DIR ROWS

then reads DIR with streaming 0.13.0: StreamingDataset(local=<copy of DIR>, remote=None, shuffle=False)
for the standard layout (no custom registration: that is the point of that layout) and
LocalDataset(local=DIR) with the notebook's `uint32` encoding registered for cooking mode, checks the
sizes and sha1/xxh64 of every shard with streaming's own hashing, and compares every sample with what
tools/qwen2_audio_ref.py computes independently (transformers tokenizer, librosa lengths, processor
expansion, greedy / TRL-bfd packing, positions, labels, document lengths, audio lists). The bfd block
assignment is also checked against TRL's own pack_dataset(strategy="bfd") (all documents in one map
batch). rejects.jsonl must list exactly the rows the reference rejects (same file and line or index,
same reason kind). Output must be byte-identical across --jobs values, and, for the fixture rows,
identical to the committed goldens in tests/fixtures/pack/ (cooking_4096, cooking_512,
standard_4096_greedy_all, standard_512_bfd_assistant). Exits 1 on any mismatch.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from streaming import LocalDataset, StreamingDataset
from streaming.base.hashing import get_hash

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen2_audio_ref as ref  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
FIX = os.path.join(REPO, 'tests', 'fixtures', 'pack')


ref.register_uint32()

# reference reason kinds -> audiotok's
KIND = {'audio_missing': 'audio', 'audio_undecodable': 'audio', 'invalid_row': 'bad_row'}

GOLDENS = {
    ('cooking', 'greedy', 'all', 4096): 'cooking_4096',
    ('cooking', 'greedy', 'all', 512): 'cooking_512',
    ('standard', 'greedy', 'all', 4096): 'standard_4096_greedy_all',
    ('standard', 'bfd', 'assistant', 512): 'standard_512_bfd_assistant',
}


class Failures:
    def __init__(self):
        self.items = []

    def add(self, where, msg):
        self.items.append(f'{where}: {msg}')
        if len(self.items) <= 40:
            print(f'  FAIL {where}: {msg}')


def check_files(root, fail, where):
    with open(os.path.join(root, 'index.json')) as f:
        index = json.load(f)
    n = 0
    for shard in index['shards']:
        info = shard['raw_data']
        with open(os.path.join(root, info['basename']), 'rb') as f:
            data = f.read()
        if len(data) != info['bytes']:
            fail.add(where, f'{info["basename"]}: {len(data)} bytes, index says {info["bytes"]}')
        for algo, want in info['hashes'].items():
            if get_hash(algo, data) != want:
                fail.add(where, f'{info["basename"]}: {algo} differs from index.json')
            n += 1
    return index, n


def dir_bytes(d):
    return {n: open(os.path.join(d, n), 'rb').read() for n in sorted(os.listdir(d)) if n != 'rejects.jsonl'}


def reference(tok, inputs, block):
    """Independent computation: documents (ids, paths) in input order and the rejects."""
    maker = ref.Documents(tok)
    docs, rejects = [], []
    for path in inputs:
        is_array = open(path, encoding='utf-8').read().lstrip().startswith('[')
        for where, row, err in ref.read_rows(path):
            if err is None:
                try:
                    ids, paths = maker.document(row)
                    if len(ids) > block:
                        err = f'{len(ids)} tokens, longer than the block ({block})'
                except (ValueError, OSError) as e:
                    err = str(e)
            if err is not None:
                kind = ref.reason_kind(err)
                rejects.append((path, 'index' if is_array else 'line', where, KIND.get(kind, kind)))
            else:
                docs.append((ids, paths))
    return docs, rejects


def trl_bfd(lengths, block):
    """TRL's own pack_dataset(strategy="bfd") on documents of the given lengths; returns doc indices."""
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar
    from trl.data_utils import pack_dataset

    disable_progress_bar()
    ds = Dataset.from_dict({'input_ids': [[i] * n for i, n in enumerate(lengths)]})
    packed = pack_dataset(ds, block, strategy='bfd', map_kwargs={'batch_size': max(1, len(lengths))})
    bins = []
    for row, seq in zip(packed['input_ids'], packed['seq_lengths']):
        b, pos = [], 0
        for n in seq:
            b.append(row[pos])
            pos += n
        bins.append(b)
    return bins


def expected_samples(docs, bins, block, layout, train_on):
    out = []
    for b in bins:
        ids, pos, labels, lens, audio = [], [], [], [], []
        for i in b:
            d, paths = docs[i]
            ids += d
            pos += list(range(len(d)))
            labels += ref.labels_for(d, train_on)
            lens.append(len(d))
            audio += paths
        pad = block - len(ids)
        s = {'input_ids': ids + [ref.PAD_ID] * pad, 'position_ids': pos + [0] * pad}
        if layout == 'cooking':
            s.update({'attention_mask': lens, 'audio': json.dumps(audio), 'text': ''})
        else:
            s.update({'labels': labels + [-100] * pad, 'seq_lengths': lens, 'audio': audio})
        out.append(s)
    return out


def as_list(v):
    return v.tolist() if isinstance(v, np.ndarray) else v


def read_samples(out_dir, layout, tmp):
    """Every sample of one output, read with streaming (cooking: LocalDataset + uint32)."""
    if layout == 'cooking':
        ds = LocalDataset(local=out_dir)
    else:
        local = os.path.join(tmp, 'streaming_copy')
        if os.path.exists(local):
            shutil.rmtree(local)
        shutil.copytree(out_dir, local)
        ds = StreamingDataset(local=local, remote=None, shuffle=False, batch_size=1)
    return [{k: as_list(v) for k, v in ds[i].items()} for i in range(len(ds))]


def read_in_subprocess(jobs):
    """[(dir, layout)] -> samples per dir. StreamingDataset keeps shared-memory file descriptors open for
    the life of the process (they pile up across datasets), so each group is read in a fresh process."""
    res = subprocess.run([sys.executable, os.path.abspath(__file__), '--read', json.dumps(jobs)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f'reader failed:\n{res.stderr[-3000:]}')
    return json.loads(res.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--audiotok', default=os.path.join(REPO, 'target', 'release', 'audiotok'))
    ap.add_argument('--tokenizer', default=os.path.join(FIX, 'qwen2-tokenizer'))
    ap.add_argument('--rows', nargs='+', default=None,
                    help='row files packed together (default: rows.jsonl, then rows.json on their own)')
    ap.add_argument('--block-sizes', default='4096,512')
    ap.add_argument('--jobs', default='1,2')
    ap.add_argument('--lengths', default='header,decode')
    ap.add_argument('--read', help=argparse.SUPPRESS)  # internal: reader subprocess
    a = ap.parse_args()
    if a.read:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps([read_samples(d, layout, tmp) for d, layout in json.loads(a.read)]))
        return
    os.chdir(REPO)
    audiotok = os.path.abspath(a.audiotok)
    tok = ref.load_tokenizer(a.tokenizer)
    fail = Failures()
    runs = samples_checked = hashes_checked = 0
    fixture_sets = [['tests/fixtures/pack/rows.jsonl'], ['tests/fixtures/pack/rows.json']]
    row_sets = [a.rows] if a.rows else fixture_sets
    combos = [('standard', s, t) for s in ('greedy', 'bfd') for t in ('all', 'assistant')]
    combos += [('cooking', s, 'all') for s in ('greedy', 'bfd')]
    with tempfile.TemporaryDirectory() as tmp:
        for rows in row_sets:
            fixture_rows = rows in fixture_sets
            for block in [int(b) for b in a.block_sizes.split(',')]:
                docs, rejects = reference(tok, rows, block)
                lengths = [len(d) for d, _ in docs]
                bins = {'greedy': ref.greedy_bins(lengths, block), 'bfd': ref.bfd_bins(lengths, block)}
                trl_bins = trl_bfd(lengths, block)
                if trl_bins != bins['bfd']:
                    fail.add(f'B={block}', f'reference bfd {bins["bfd"]} != TRL pack_dataset {trl_bins}')
                print(f'{" ".join(rows)}, block {block}: {len(docs)} documents, {len(rejects)} rejects; '
                      f'greedy {len(bins["greedy"])} blocks, bfd {len(bins["bfd"])} blocks '
                      f'(TRL pack_dataset agrees: {trl_bins == bins["bfd"]})')
                group = []  # (where, combo, out dir)
                for combo in combos:
                    layout, strategy, train_on = combo
                    for lengths_mode in a.lengths.split(','):
                        for jobs in a.jobs.split(','):
                            where = (f'{" ".join(rows)} B={block} {layout} {strategy} train-on={train_on} '
                                     f'lengths={lengths_mode} jobs={jobs}')
                            out = os.path.join(tmp, f'run{runs}')
                            cmd = [audiotok, 'pack', '--profile', 'qwen2-audio', '--tokenizer', a.tokenizer,
                                   '--block-size', str(block), '--strategy', strategy, '--lengths', lengths_mode,
                                   '--jobs', jobs, '--json', '--out', out]
                            cmd += ['--compat', 'cooking'] if layout == 'cooking' else ['--train-on', train_on]
                            res = subprocess.run(cmd + rows, capture_output=True, text=True)
                            runs += 1
                            if res.returncode != 0:
                                fail.add(where, f'exit {res.returncode}: {res.stderr.strip()[-500:]}')
                                continue
                            group.append((where, combo, out))
                read = read_in_subprocess([(out, combo[0]) for _, combo, out in group])
                first = {}
                for (where, combo, out), got in zip(group, read):
                    layout, strategy, train_on = combo
                    hashes_checked += check_files(out, fail, where)[1]
                    want = expected_samples(docs, bins[strategy], block, layout, train_on)
                    if len(got) != len(want):
                        fail.add(where, f'{len(got)} samples, expected {len(want)}')
                    for i, (g, w) in enumerate(zip(got, want)):
                        if set(g) != set(w):
                            fail.add(where, f'sample {i}: columns {sorted(g)} != {sorted(w)}')
                            continue
                        for k in w:
                            if g[k] != w[k]:
                                fail.add(where, f'sample {i} column {k}: got {str(g[k])[:120]} expected {str(w[k])[:120]}')
                        samples_checked += 1
                    got_rej = []
                    with open(os.path.join(out, 'rejects.jsonl'), encoding='utf-8') as f:
                        for line in f:
                            r = json.loads(line)
                            at = 'line' if 'line' in r else 'index'
                            got_rej.append((r['file'], at, r[at], r['kind']))
                    if sorted(got_rej) != sorted(rejects):
                        fail.add(where, f'rejects {sorted(got_rej)} != reference {sorted(rejects)}')
                    now = dir_bytes(out)
                    if combo not in first:
                        first[combo] = now
                    elif now != first[combo]:
                        fail.add(where, 'output bytes differ from the first run of this combination')
                    golden = GOLDENS.get((layout, strategy, train_on, block))
                    if fixture_rows and golden and now != dir_bytes(os.path.join(FIX, golden)):
                        fail.add(where, f'output differs from the committed golden {golden}/')
                    shutil.rmtree(out)
    print(f'{runs} audiotok runs, {samples_checked} samples and {hashes_checked} shard hashes checked with '
          f'streaming; {len(fail.items)} failures')
    print('PASS' if not fail.items else 'FAIL')
    sys.exit(1 if fail.items else 0)


if __name__ == '__main__':
    main()
