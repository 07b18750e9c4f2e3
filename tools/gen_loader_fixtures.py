#!/usr/bin/env python3
"""Writes the packed-audio loader golden fixtures in tests/fixtures/loader/ with the real reference packages.

    python3 -m venv .venv-torch && .venv-torch/bin/pip install --no-deps -r tools/requirements-loader.txt
    .venv-torch/bin/python tools/gen_loader_fixtures.py            # rewrites everything, same bytes
    .venv-torch/bin/python tools/gen_loader_fixtures.py --check    # regenerate in memory, compare

For each pack fixture in tests/fixtures/pack/ (standard_4096_greedy_all, standard_512_bfd_assistant,
cooking_4096, cooking_512) one `<name>.json` (reference code in tools/loader_reference.py):

  blocks[i]    what PackedAudioDataset yields for block i (spec path): input_ids, position_ids, labels,
               seq_lengths, cu_seqlens, feature_attention_mask (exact), n_audio and the audio paths,
               the <|AUDIO|> count, the notebook path's labels (notebook_labels), the notebook's
               [1, S, S] additive mask described exactly (shape, sha256 of the int8 0/1 "allowed" pattern
               and of the raw bfloat16 bytes, allowed count, min value), and per audio a digest of
               input_features (shape, valid frames, statistics, two small slices, float32 values)
  batch        the collator modes on the first two blocks: flatten (transformers' own
               DataCollatorWithFlattening keys, exact), rows ([B, T] keys, exact), mask4d (the
               [B, 1, T, T] mask described like the notebook's), the features' order and shapes

Integer arrays are written as runs: [[first, step, count], ...] expands to first + step*k for
k = 0..count-1 (a padding run is [151643, 0, n], a position ramp [0, 1, n]). Every consistency the
spec implies between the notebook path, the spec path and transformers is asserted while generating
(see check_block and check_batch). Rerunning writes identical bytes.
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loader_reference as ref  # noqa: E402

OUT = os.path.join(ref.REPO, 'tests', 'fixtures', 'loader')
PACK = os.path.join(ref.REPO, 'tests', 'fixtures', 'pack')


def runs(a):
    """Exact run encoding of a 1-D integer array: [[first, step, count], ...] (greedy, left to right)."""
    a = [int(x) for x in np.asarray(a).reshape(-1)]
    out, i = [], 0
    while i < len(a):
        if i + 1 == len(a):
            out.append([a[i], 0, 1])
            break
        step = a[i + 1] - a[i]
        j = i + 1
        while j + 1 < len(a) and a[j + 1] - a[j] == step:
            j += 1
        out.append([a[i], step, j - i + 1])
        i = j + 1
    return out


def unruns(r):
    return [first + step * k for first, step, count in r for k in range(count)]


def f32(x):
    """A float32 value as the shortest decimal that reads back to it."""
    return float(np.format_float_positional(np.float32(x), unique=True, trim='-'))


def sha256(arr):
    return hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()


def mask_digest(mask):
    """An additive mask tensor (0 = allowed) described exactly without its bytes."""
    import torch

    allowed = (mask == 0).to(torch.int8).numpy()
    out = {
        'shape': list(mask.shape),
        'dtype': str(mask.dtype).replace('torch.', ''),
        'allowed_count': int(allowed.sum()),
        'allowed_int8_sha256': sha256(allowed),
        'min_value': float(torch.finfo(mask.dtype).min),
        'values': sorted({float(v) for v in torch.unique(mask.float()).tolist()}),
    }
    if mask.dtype == torch.bfloat16:
        out['bfloat16_le_sha256'] = sha256(mask.contiguous().view(torch.int16).numpy().astype('<i2'))
    return out


def feature_digest(feat, frames, np_path_feat):
    """Shape, statistics and slices of one [128, 3000] log-mel, float32 values (tolerate float noise)."""
    feat = np.asarray(feat, np.float32)
    lo = max(0, frames - 4)
    hi = min(feat.shape[1], frames + 4)
    return {
        'shape': list(feat.shape),
        'valid_frames': int(frames),
        'mean': f32(feat.astype(np.float64).mean()),
        'std': f32(feat.astype(np.float64).std()),
        'min': f32(feat.min()),
        'max': f32(feat.max()),
        'valid_mean': f32(feat[:, :frames].astype(np.float64).mean()) if frames else None,
        'first_frames': {'bins': [0, 4], 'frames': [0, 8], 'values': [[f32(v) for v in row] for row in feat[0:4, 0:8]]},
        'boundary': {'bins': [0, 4], 'frames': [lo, hi], 'values': [[f32(v) for v in row] for row in feat[0:4, lo:hi]]},
        'numpy_path_max_abs_diff': f32(np.abs(feat - np.asarray(np_path_feat, np.float32)).max()),
    }


def check_block(i, raw, layout, spec, nb):
    """Asserts where the notebook path and the spec must agree, and the spec's own invariants."""
    import torch

    t = len(spec['input_ids'])
    cu = spec['cu_seqlens']
    s = int(cu[-1])
    assert (nb['input_ids'].numpy() == spec['input_ids']).all()
    assert (nb['position_ids'].numpy() == spec['position_ids']).all()
    for d in range(len(cu) - 1):
        assert (spec['position_ids'][cu[d] : cu[d + 1]] == np.arange(cu[d + 1] - cu[d])).all(), (i, d)
    assert (spec['input_ids'][s:] == ref.PAD_ID).all() and (spec['position_ids'][s:] == 0).all()
    assert nb['attention_mask'].shape == (1, s, s)
    # the notebook mask, padded its way, is the spec's mask4d for this block
    padded = torch.nn.functional.pad(nb['attention_mask'], (0, t - s, 0, t - s), value=torch.finfo(torch.bfloat16).min)
    assert torch.equal(padded[None], ref.collate_mask4d([spec])['attention_mask'])
    if spec['input_features'].shape[0]:
        assert np.array_equal(nb['input_features'].numpy(), spec['input_features'])
        assert np.array_equal(nb['feature_attention_mask'].numpy(), spec['feature_attention_mask'])
    labels = spec['labels']
    assert (labels[s:] == ref.IGNORE).all() and (labels[cu[:-1]] == ref.IGNORE).all()
    assert not np.isin(labels, [ref.AUDIO_ID, ref.AUDIO_BOS_ID, ref.AUDIO_EOS_ID]).any()
    keep = labels != ref.IGNORE
    assert (labels[keep] == spec['input_ids'][keep]).all()
    nb_labels = nb['labels']
    if layout == 'cooking':
        again = ref.apply_spec_rule(nb_labels, nb['input_ids'], cu).numpy()
        assert (again == labels).all(), i
    else:
        stored = np.asarray(raw['labels']).astype(np.int64)
        fix = stored.copy()
        fix[cu[:-1]] = ref.IGNORE
        assert (fix == labels).all()


def block_entry(i, raw, layout, spec, nb):
    paths = ref.audio_paths(raw)
    fmask = spec['feature_attention_mask']
    frames = fmask.sum(-1)
    np_feats, np_mask = ref.extract_numpy_path(paths)
    assert np.array_equal(np_mask, fmask)
    return {
        'index': i,
        'n_audio': len(paths),
        'audio': paths,
        'audio_tokens': int((spec['input_ids'] == ref.AUDIO_ID).sum()),
        'audio_tokens_per_audio': [int(x) for x in ref.audio_tokens(frames)],
        'seq_lengths': [int(x) for x in spec['seq_lengths']],
        'cu_seqlens': [int(x) for x in spec['cu_seqlens']],
        'input_ids': runs(spec['input_ids']),
        'position_ids': runs(spec['position_ids']),
        'labels': runs(spec['labels']),
        'notebook_labels': runs(nb['labels'].numpy()),
        'feature_attention_mask': {'shape': list(fmask.shape), 'rows': [runs(r) for r in fmask]},
        'input_features': [feature_digest(spec['input_features'][a], int(frames[a]), np_feats[a]) for a in range(len(paths))],
        'notebook_attention_mask': mask_digest(nb['attention_mask']),
    }


def tensor_runs(x):
    return {'shape': list(x.shape), 'dtype': str(x.dtype).replace('torch.', ''), 'rows': [runs(r) for r in x.reshape(x.shape[0], -1).numpy()]}


def check_batch(specs, nbs, block_size, out):
    import torch

    nbc = ref.notebook_collate(nbs, block_size)
    m4 = out['mask4d']
    assert torch.equal(nbc['attention_mask'], m4['attention_mask'])
    for k in ('input_ids', 'position_ids'):
        assert torch.equal(nbc[k], m4[k])
    assert torch.equal(nbc['input_features'], m4['input_features'])
    assert torch.equal(nbc['feature_attention_mask'], m4['feature_attention_mask'])
    for k in ('input_ids', 'labels', 'position_ids', 'input_features', 'feature_attention_mask'):
        assert torch.equal(out['rows'][k], m4[k]), k
    fl = out['flatten']
    # transformers' flattening = the blocks without their padding, spec labels included
    keep = [b['cu_seqlens'][-1] for b in specs]
    for k in ('input_ids', 'labels', 'position_ids'):
        want = np.concatenate([b[k][:n] for b, n in zip(specs, keep)])
        assert fl[k].shape == (1, len(want)) and (fl[k][0].numpy() == want).all(), k
    cu = [0]
    for n in [int(x) for b in specs for x in b['seq_lengths']]:
        cu.append(cu[-1] + n)
    assert fl['cu_seq_lens_q'].tolist() == cu and fl['cu_seq_lens_k'].tolist() == cu
    assert fl['max_length_q'] == fl['max_length_k'] == max(int(x) for b in specs for x in b['seq_lengths'])
    # the model dtype changes only the mask's dtype
    f32_mask = ref.collate_mask4d(specs, torch.float32)['attention_mask']
    assert torch.equal(f32_mask == 0, m4['attention_mask'] == 0)


def batch_entry(specs, nbs, block_size):
    import torch

    out = {mode: ref.collate(specs, mode) for mode in ('flatten', 'rows', 'mask4d')}
    check_batch(specs, nbs, block_size, out)
    fl, rows, m4 = out['flatten'], out['rows'], out['mask4d']
    feats = {
        'input_features': {'shape': list(rows['input_features'].shape), 'dtype': 'float32'},
        'feature_attention_mask': {'shape': list(rows['feature_attention_mask'].shape), 'dtype': 'int32'},
        'order': [[bi, a] for bi, b in enumerate(specs) for a in range(b['input_features'].shape[0])],
    }
    return {
        'blocks': list(range(len(specs))),
        'features': feats,
        'flatten': {
            'collator': 'transformers.DataCollatorWithFlattening(return_flash_attn_kwargs=True, '
            'return_position_ids=True, separator_id=-100) on the documents of the blocks, padding dropped',
            'input_ids': tensor_runs(fl['input_ids']),
            'labels': tensor_runs(fl['labels']),
            'position_ids': tensor_runs(fl['position_ids']),
            'cu_seq_lens_q': {'dtype': str(fl['cu_seq_lens_q'].dtype).replace('torch.', ''), 'values': fl['cu_seq_lens_q'].tolist()},
            'cu_seq_lens_k': {'dtype': str(fl['cu_seq_lens_k'].dtype).replace('torch.', ''), 'values': fl['cu_seq_lens_k'].tolist()},
            'max_length_q': fl['max_length_q'],
            'max_length_k': fl['max_length_k'],
            'keys': sorted(fl.keys()),
        },
        'rows': {
            'input_ids': tensor_runs(rows['input_ids']),
            'labels': tensor_runs(rows['labels']),
            'position_ids': tensor_runs(rows['position_ids']),
            'keys': sorted(rows.keys()),
        },
        'mask4d': {
            'attention_mask': mask_digest(m4['attention_mask']),
            'attention_mask_float32': mask_digest(ref.collate_mask4d(specs, torch.float32)['attention_mask']),
            'keys': sorted(m4.keys()),
        },
    }


def fixture(name, versions):
    src = os.path.join(PACK, name)
    layout = ref.layout_of(src)
    raws = ref.read_raw(src)
    specs, nbs, blocks = [], [], []
    for i, raw in enumerate(raws):
        spec = ref.spec_block(raw, layout, i)
        nb = ref.notebook_block(raw, layout, i)
        check_block(i, raw, layout, spec, nb)
        blocks.append(block_entry(i, raw, layout, spec, nb))
        specs.append(spec)
        nbs.append(nb)
    block_size = len(specs[0]['input_ids'])
    doc = {
        'source': f'tests/fixtures/pack/{name}',
        'layout': layout,
        'block_size': block_size,
        'blocks_count': len(raws),
        'dtypes': ref.SPEC_DTYPES,
        'int_encoding': 'runs: [[first, step, count], ...] -> first + step*k for k in 0..count-1',
        'reference': versions,
        'blocks': blocks,
        'batch': batch_entry(specs[:2], nbs[:2], block_size) if len(specs) >= 2 else None,
    }
    return dump(doc) + '\n'


def dump(x, indent=0):
    """JSON with dicts one key a line and every list on one line (compact, diffable, deterministic)."""
    pad = ' ' * indent
    if isinstance(x, dict):
        if not x:
            return '{}'
        items = [f'{pad} {json.dumps(k)}: {dump(v, indent + 1)}' for k, v in x.items()]
        return '{\n' + ',\n'.join(items) + '\n' + pad + '}'
    if isinstance(x, list) and any(isinstance(v, dict) for v in x):
        return '[\n' + ',\n'.join(f'{pad} {dump(v, indent + 1)}' for v in x) + '\n' + pad + ']'
    return json.dumps(x, separators=(',', ':'), ensure_ascii=False)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--check', action='store_true', help='compare with the committed files instead of writing')
    ap.add_argument('--only', action='append', help='one pack fixture name (repeatable)')
    a = ap.parse_args()
    versions = ref.check_versions()
    os.chdir(ref.REPO)
    os.makedirs(OUT, exist_ok=True)
    bad = 0
    for name in a.only or ref.PACK_FIXTURES:
        text = fixture(name, versions)
        path = os.path.join(OUT, f'{name}.json')
        # the run encoding round-trips (self-check of the encoder)
        for b in json.loads(text)['blocks']:
            assert len(unruns(b['input_ids'])) == json.loads(text)['block_size']
        if a.check:
            same = os.path.exists(path) and open(path, encoding='utf-8').read() == text
            print(f'{name}.json: {"same bytes" if same else "DIFFERS"}')
            bad += not same
        else:
            with open(path, 'w', encoding='utf-8') as f:
                f.write(text)
            print(f'{name}.json: {len(text.encode())} bytes')
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
