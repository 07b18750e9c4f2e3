#!/usr/bin/env python3
"""Python reference for `audiotok pack --profile qwen2-audio`: the public notebook's loop, faithfully.

    tmp/venv-pack/bin/python tools/pack_reference.py --tokenizer tests/fixtures/pack/qwen2-tokenizer \\
        --block-size 4096 [--strategy greedy|bfd] [--standard [--train-on all|assistant]] --out DIR INPUT...

Cooking mode (default, the notebook): for each row in input order, decode every audio with
librosa.load(path, sr=16000) (mono, soxr_hq), expand the <|AUDIO|> placeholders as Qwen2AudioProcessor
does, tokenise with the transformers Qwen2 tokenizer (special tokens recognised, nothing added), skip
rows longer than the block, and pack greedily (next-fit, input order). Each block is written with
streaming's MDSWriter (compression None, hashes sha1 + xxh64, default size limit) and the notebook's
custom `uint32` encoding (raw little-endian u32 bytes, variable length, registered in
streaming.base.format.mds.encodings._encodings):

    input_ids       uint32  documents concatenated, right-padded with 151643 to the block size
    position_ids    uint32  0..len-1 per document, padded with 0
    attention_mask  uint32  the document lengths (no entry for the padding)
    audio           str     json.dumps(list of the block's audio paths, in order)
    text            str     ""

Standard mode (--standard): input_ids / position_ids / labels as ndarray:int32:<block>, seq_lengths
ndarray:int32, audio json (list of paths); labels = input_ids with -100 on <|AUDIO|>, <|audio_bos|>,
<|audio_eos|> and the padding (and outside assistant turns with --train-on assistant), unshifted.

--strategy bfd packs with TRL's best-fit-decreasing rule over all documents (tools/qwen2_audio_ref.py
bfd_bins; --bfd-batch N reproduces pack_dataset's per-map-batch packing, N=1000 there).
Every audio of every row is decoded (no length cache, like the notebook) unless --cache-lengths.
Rows that fail (missing/undecodable audio, placeholder/audio count mismatch, malformed JSON, too long)
are skipped, and written to DIR/rejects.jsonl ({"file", "line" or "index", "reason", "kind"}); the
notebook itself only skips the too-long ones (it would crash on the others).
Prints a JSON summary (rows, documents, blocks, tokens, seconds) on stdout.

Needs the venv of tools/requirements-pack.txt (mosaicml-streaming 0.13.0, transformers 4.57.6,
librosa 0.11.0 / soxr 1.1.0).
"""

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np
from streaming import MDSWriter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen2_audio_ref as ref  # noqa: E402

# The notebook's custom encoding: a numpy uint32 array as raw bytes.
ref.register_uint32()

COOKING_COLUMNS = {
    'input_ids': 'uint32',
    'position_ids': 'uint32',
    'attention_mask': 'uint32',
    'audio': 'str',
    'text': 'str',
}
HASHES = ['sha1', 'xxh64']


def standard_columns(block):
    return {
        'input_ids': f'ndarray:int32:{block}',
        'position_ids': f'ndarray:int32:{block}',
        'labels': f'ndarray:int32:{block}',
        'seq_lengths': 'ndarray:int32',
        'audio': 'json',
    }


def cooking_sample(docs, block):
    """The notebook's collator for one block: docs = [(ids, paths)]."""
    input_ids, position_ids, lengths, audio = [], [], [], []
    for ids, paths in docs:
        input_ids.extend(ids)
        position_ids.extend(range(len(ids)))
        lengths.append(len(ids))
        audio.extend(paths)
    pad = block - len(input_ids)
    input_ids.extend([ref.PAD_ID] * pad)
    position_ids.extend([0] * pad)
    return {
        'input_ids': np.array(input_ids).astype(np.uint32),
        'position_ids': np.array(position_ids).astype(np.uint32),
        'attention_mask': np.array(lengths).astype(np.uint32),
        'audio': json.dumps(audio),
        'text': '',
    }


def standard_sample(docs, block, train_on):
    input_ids, position_ids, labels, lengths, audio = [], [], [], [], []
    for ids, paths in docs:
        input_ids.extend(ids)
        position_ids.extend(range(len(ids)))
        labels.extend(ref.labels_for(ids, train_on))
        lengths.append(len(ids))
        audio.extend(paths)
    pad = block - len(input_ids)
    input_ids.extend([ref.PAD_ID] * pad)
    position_ids.extend([0] * pad)
    labels.extend([-100] * pad)
    return {
        'input_ids': np.array(input_ids, dtype=np.int32),
        'position_ids': np.array(position_ids, dtype=np.int32),
        'labels': np.array(labels, dtype=np.int32),
        'seq_lengths': np.array(lengths, dtype=np.int32),
        'audio': audio,
    }


def collect(tok, inputs, block, cache=False):
    """Documents in input order and rejects, like the notebook's loop (which skips too-long rows)."""
    docs_maker = ref.Documents(tok, cache=cache)
    docs, rejects, rows = [], [], 0
    for path in inputs:
        is_array = open(path, encoding='utf-8').read().lstrip().startswith('[')
        for where, row, err in ref.read_rows(path):
            rows += 1
            loc = {'file': path, ('index' if is_array else 'line'): where}
            if err is None:
                try:
                    ids, paths = docs_maker.document(row)
                    if len(ids) > block:
                        err = f'{len(ids)} tokens, longer than the block ({block})'
                except (ValueError, OSError) as e:
                    err = str(e)
            if err is not None:
                rejects.append({**loc, 'reason': err, 'kind': ref.reason_kind(err)})
                continue
            docs.append((ids, paths))
    return docs, rejects, rows, docs_maker


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--tokenizer', required=True)
    ap.add_argument('--block-size', type=int, default=4096)
    ap.add_argument('--strategy', choices=['greedy', 'bfd'], default='greedy')
    ap.add_argument('--bfd-batch', type=int, default=0, help='pack bfd per batch of N documents (0: all)')
    ap.add_argument('--standard', action='store_true', help='standard columns instead of cooking mode')
    ap.add_argument('--train-on', choices=['all', 'assistant'], default='all')
    ap.add_argument('--cache-lengths', action='store_true',
                    help='decode each audio path once (the notebook decodes it for every row)')
    ap.add_argument('--out', required=True)
    ap.add_argument('inputs', nargs='+')
    a = ap.parse_args()

    t0 = time.perf_counter()
    tok = ref.load_tokenizer(a.tokenizer)
    t1 = time.perf_counter()
    docs, rejects, rows, _ = collect(tok, a.inputs, a.block_size, a.cache_lengths)
    lengths = [len(ids) for ids, _ in docs]
    if a.strategy == 'greedy':
        bins = ref.greedy_bins(lengths, a.block_size)
    else:
        step = a.bfd_batch or max(1, len(lengths))
        bins = []
        for s in range(0, len(lengths), step):
            bins += [[s + i for i in b] for b in ref.bfd_bins(lengths[s : s + step], a.block_size)]

    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    columns = standard_columns(a.block_size) if a.standard else COOKING_COLUMNS
    with MDSWriter(out=a.out, columns=columns, compression=None, hashes=HASHES) as out:
        for b in bins:
            block_docs = [docs[i] for i in b]
            if a.standard:
                out.write(standard_sample(block_docs, a.block_size, a.train_on))
            else:
                out.write(cooking_sample(block_docs, a.block_size))
    with open(os.path.join(a.out, 'rejects.jsonl'), 'w', encoding='utf-8') as f:
        for r in rejects:
            f.write(json.dumps(r, ensure_ascii=False) + '\n')
    t2 = time.perf_counter()
    print(
        json.dumps(
            {
                'rows': rows,
                'documents': len(docs),
                'rejected': len(rejects),
                'blocks': len(bins),
                'tokens': sum(lengths),
                'efficiency': sum(lengths) / (len(bins) * a.block_size) if bins else 0.0,
                'tokenizer_load_s': t1 - t0,
                'pack_s': t2 - t1,
            }
        )
    )


if __name__ == '__main__':
    main()
