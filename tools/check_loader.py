#!/usr/bin/env python3
"""Checks audiotok's packed-audio loader against the reference and trains one step of a tiny Qwen2-Audio on it.

    python3 -m venv .venv-torch && .venv-torch/bin/pip install --no-deps -r tools/requirements-loader.txt
    .venv-torch/bin/pip install maturin && .venv-torch/bin/pip install --no-build-isolation ./bindings/python
    .venv-torch/bin/python tools/check_loader.py                 # audiotok.loader / audiotok.torch
    .venv-torch/bin/python tools/check_loader.py --self-test     # the reference in audiotok's place

Run from the repository root (the pack fixtures' audio paths are relative to it). For every pack fixture
in tests/fixtures/pack/ (standard_4096_greedy_all, standard_512_bfd_assistant, cooking_4096, cooking_512):

1. `audiotok.loader.PackedAudioDataset(dir, shuffle=False, seed=0)`: len, and every block against
   tools/loader_reference.py's spec path computed live and against the committed golden
   tests/fixtures/loader/<name>.json: the key set, dtypes and shapes; input_ids, position_ids, labels,
   seq_lengths, cu_seqlens, feature_attention_mask exactly; input_features within --feature-atol
   (1e-4) of transformers' WhisperFeatureExtractor run here (the golden digests within the same
   tolerance; the distance to the extractor's numpy path is printed too). Iterating gives ds[0],
   ds[1], ...; with shuffle=True an epoch is a permutation of the same blocks, the same twice for
   the same seed.
2. `audiotok.torch.Qwen2AudioCollator(mode=..., dtype=...)` on the first two blocks, modes flatten,
   rows, mask4d (bfloat16 and float32): every key against the reference collators (flatten:
   transformers' DataCollatorWithFlattening itself) and the golden batch, exactly except the features.
3. The model step: a tiny Qwen2AudioForConditionalGeneration with random weights (torch.manual_seed
   --seed, float32, --attn sdpa; audio encoder 2 layers d_model 64, text 2 layers hidden 64, the real
   vocab 151936, audio_token_index 151646), one forward + backward per mode on the collator's batch.
   The loss is the model's own shifted mean cross-entropy over labels != -100, computed from its
   hidden states with its lm_head on the target positions only (the built-in loss of
   Qwen2AudioForConditionalGeneration raises IndexError on a 4-D attention_mask in transformers
   5.23.0, and full logits of a
   2 x 4096 batch at this vocab are ~5 GB); for flatten and rows on the 512 fixtures the model's
   built-in `labels=` loss is shown to be the same number. Compared with the notebook path (the
   notebook's own batch: its [1,S,S] masks padded with the min value, its input_ids / position_ids /
   features) forwarded with the same labels as the loader's (the spec labels: the notebook's labels
   with -100 also on <|audio_bos|>/<|audio_eos|>, the padding and each document's first token, and
   for the standard layout the stored labels), within --loss-rtol. Also shown, not compared: the
   notebook path with its own labels (different targets, so a different mean) and two controls that
   must differ (a plain causal mask over the whole row; the notebook's mask padded with 0.0, the
   F.pad default of pad_attention_mask_4d). Every trainable tensor must get a finite, non-zero gradient.
4. A copy of cooking_512 whose block 1 lists another first clip: ds[1] must raise an error naming
   the block and both <|AUDIO|> counts; blocks 0 and 2 still load.

Prints a table per fixture and exits 1 on any failure.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import loader_reference as ref  # noqa: E402

FIXTURES = os.path.join(ref.REPO, 'tests', 'fixtures', 'loader')
PACK = os.path.join(ref.REPO, 'tests', 'fixtures', 'pack')
MODES = ('flatten', 'rows', 'mask4d')


def unruns(r):
    return [first + step * k for first, step, count in r for k in range(count)]


class Failures:
    def __init__(self):
        self.items = []

    def check(self, ok, where, msg):
        if not ok:
            self.items.append(f'{where}: {msg}')
            if len(self.items) <= 60:
                print(f'  FAIL {where}: {msg}')
        return ok


def as_np(x):
    import torch

    if isinstance(x, torch.Tensor):
        if x.dtype == torch.bfloat16:
            return x.detach().cpu().view(torch.int16).numpy()
        return x.detach().cpu().numpy()
    return np.asarray(x)


def dtype_name(x):
    import torch

    if isinstance(x, torch.Tensor):
        return str(x.dtype).replace('torch.', '')
    if isinstance(x, (int, np.integer)):
        return 'int'
    return np.asarray(x).dtype.name


def compare_int(fail, where, got, want):
    g, w = as_np(got), as_np(want)
    if not fail.check(g.shape == w.shape, where, f'shape {g.shape}, want {w.shape}'):
        return
    if not np.array_equal(g, w):
        bad = np.argwhere(g != w)
        first = tuple(int(v) for v in bad[0])
        fail.check(False, where, f'{len(bad)} values differ, first at {first}: {g[first]} vs {w[first]}')


LOSSY_ATOL = 5e-4


def compare_features(fail, where, got, want, atol):
    g, w = np.asarray(as_np(got), np.float32), np.asarray(as_np(want), np.float32)
    if not fail.check(g.shape == w.shape, where, f'shape {g.shape}, want {w.shape}'):
        return float('nan')
    d = float(np.abs(g - w).max()) if g.size else 0.0
    fail.check(d <= atol, where, f'max |diff| {d:.3g} > {atol}')
    return d


def compare_digest(fail, where, feat, digest, atol):
    feat = np.asarray(feat, np.float32)
    fail.check(list(feat.shape) == digest['shape'], where, f'shape {list(feat.shape)} vs golden {digest["shape"]}')
    for key, part in (('first_frames', digest['first_frames']), ('boundary', digest['boundary'])):
        (b0, b1), (f0, f1) = part['bins'], part['frames']
        d = float(np.abs(feat[b0:b1, f0:f1] - np.asarray(part['values'], np.float32)).max())
        fail.check(d <= atol, where, f'golden {key} slice: max |diff| {d:.3g}')
    stats = {'mean': feat.astype(np.float64).mean(), 'std': feat.astype(np.float64).std(), 'min': feat.min(), 'max': feat.max()}
    for k, v in stats.items():
        fail.check(abs(float(v) - digest[k]) <= atol, where, f'golden {k} {float(v)} vs {digest[k]}')


SPEC_INTS = ('input_ids', 'position_ids', 'labels', 'seq_lengths', 'cu_seqlens', 'feature_attention_mask')


def check_dataset(fail, name, Dataset, golden, atol, stats):
    src = os.path.join(PACK, name)
    layout = ref.layout_of(src)
    raws = ref.read_raw(src)
    ds = Dataset(src, shuffle=False, seed=0)
    fail.check(len(ds) == len(raws) == golden['blocks_count'], name, f'len {len(ds)}, reference {len(raws)}, golden {golden["blocks_count"]}')
    got_blocks, want_blocks = [], []
    for i, raw in enumerate(raws[: len(ds)]):
        where = f'{name}[{i}]'
        got = ds[i]
        want = ref.spec_block(raw, layout, i)
        gold = golden['blocks'][i]
        missing = set(want) - set(got)
        fail.check(not missing, where, f'missing keys {sorted(missing)}')
        extra = set(got) - set(want)
        if extra:
            print(f'  note {where}: extra keys {sorted(extra)}')
        for k in want:
            if k not in got:
                continue
            fail.check(dtype_name(got[k]) == ref.SPEC_DTYPES[k], f'{where}.{k}', f'dtype {dtype_name(got[k])}, spec {ref.SPEC_DTYPES[k]}')
            if k in SPEC_INTS:
                compare_int(fail, f'{where}.{k}', got[k], want[k])
        for k in ('input_ids', 'position_ids', 'labels'):
            if k in got:
                compare_int(fail, f'{where}.{k} (golden)', got[k], np.asarray(unruns(gold[k]), np.int64))
        for k in ('seq_lengths', 'cu_seqlens'):
            if k in got:
                compare_int(fail, f'{where}.{k} (golden)', got[k], np.asarray(gold[k], np.int32))
        if 'feature_attention_mask' in got:
            fm = np.asarray([unruns(r) for r in gold['feature_attention_mask']['rows']], np.int32).reshape(gold['feature_attention_mask']['shape'])
            compare_int(fail, f'{where}.feature_attention_mask (golden)', got['feature_attention_mask'], fm)
        if 'input_features' in got:
            # Lossy clips (MP3, Vorbis) are decoded by symphonia, not libsndfile: their samples
            # differ slightly, so their features get --lossy-atol.
            paths = ref.audio_paths(raw)
            tols = [LOSSY_ATOL if p.lower().endswith(('.mp3', '.ogg')) else atol for p in paths]
            gf, wf0 = np.asarray(as_np(got['input_features']), np.float32), np.asarray(as_np(want['input_features']), np.float32)
            d = 0.0
            if fail.check(gf.shape == wf0.shape, f'{where}.input_features', f'shape {gf.shape}, want {wf0.shape}'):
                for a, tol in enumerate(tols):
                    d = max(d, compare_features(fail, f'{where}.input_features[{a}] {paths[a]}', gf[a], wf0[a], tol))
            stats['feat_ref'] = max(stats.get('feat_ref', 0.0), d)
            feats = np.asarray(got['input_features'], np.float32)
            if feats.shape[0] == gold['n_audio']:
                for a, digest in enumerate(gold['input_features']):
                    compare_digest(fail, f'{where}.input_features[{a}] (golden)', feats[a], digest, tols[a])
                npf, _ = ref.extract_numpy_path(ref.audio_paths(raw))
                if npf.shape == feats.shape and feats.size:
                    stats['feat_np'] = max(stats.get('feat_np', 0.0), float(np.abs(feats - npf).max()))
                    wf = np.asarray(want['input_features'], np.float32)
                    for a, path in enumerate(ref.audio_paths(raw)):
                        old = stats.setdefault('clips', {}).get(path, (0.0, 0.0, 0.0))
                        stats['clips'][path] = tuple(max(o, float(v)) for o, v in zip(old, (
                            np.abs(feats[a] - wf[a]).max(), np.abs(feats[a] - npf[a]).max(), np.abs(wf[a] - npf[a]).max())))
        got_blocks.append(got)
        want_blocks.append(want)
    # shuffle: an epoch (iteration) is a permutation of the same blocks, reproducible from the seed
    try:
        def order(d):
            return [np.asarray(b['input_ids']).tobytes() + np.asarray(b['labels']).tobytes() for b in iter(d)]

        plain = order(ds)
        s1, s2 = order(Dataset(src, shuffle=True, seed=1)), order(Dataset(src, shuffle=True, seed=1))
        fail.check(sorted(plain) == sorted(s1), f'{name} shuffle', 'a shuffled epoch is not a permutation of the blocks')
        fail.check(s1 == s2, f'{name} shuffle', 'shuffle=True, seed=1 gives two different epochs')
        fail.check(plain == [np.asarray(b['input_ids']).tobytes() + np.asarray(b['labels']).tobytes() for b in got_blocks],
                   f'{name} iteration', 'iterating with shuffle=False does not give ds[0], ds[1], ...')
    except Exception as e:  # noqa: BLE001
        fail.check(False, f'{name} shuffle', f'{type(e).__name__}: {e}')
    return layout, raws, got_blocks, want_blocks


def check_collator(fail, name, Collator, got_blocks, want_blocks, golden, atol):
    import torch

    out = {}
    gb = golden['batch']
    for mode, dtype in (('flatten', None), ('rows', None), ('mask4d', torch.bfloat16), ('mask4d', torch.float32)):
        where = f'{name} {mode}' + (f' {str(dtype)[6:]}' if dtype is not None else '')
        got = Collator(mode=mode, dtype=dtype or torch.bfloat16)(got_blocks)
        want = ref.collate(want_blocks, mode, dtype)
        fail.check(set(got) == set(want), where, f'keys {sorted(got)}, want {sorted(want)}')
        for k, w in want.items():
            if k not in got:
                continue
            g = got[k]
            if isinstance(w, int):
                fail.check(isinstance(g, int) and g == w, f'{where}.{k}', f'{g!r} vs {w}')
                continue
            fail.check(isinstance(g, torch.Tensor), f'{where}.{k}', f'{type(g).__name__}, want a torch tensor')
            if not isinstance(g, torch.Tensor):
                continue
            fail.check(g.dtype == w.dtype, f'{where}.{k}', f'dtype {g.dtype}, want {w.dtype}')
            if k == 'input_features':
                compare_features(fail, f'{where}.{k}', g, w, max(atol, LOSSY_ATOL))  # the batch mixes lossy clips
            else:
                compare_int(fail, f'{where}.{k}', g, w)
        # the golden batch
        if mode in ('flatten', 'rows'):
            for k in ('input_ids', 'labels', 'position_ids'):
                if k in got:
                    rows = np.asarray([unruns(r) for r in gb[mode][k]['rows']], np.int64).reshape(gb[mode][k]['shape'])
                    compare_int(fail, f'{where}.{k} (golden)', got[k], rows)
        if mode == 'flatten':
            for k in ('cu_seq_lens_q', 'cu_seq_lens_k'):
                if k in got:
                    compare_int(fail, f'{where}.{k} (golden)', got[k], np.asarray(gb['flatten'][k]['values'], np.int32))
            for k in ('max_length_q', 'max_length_k'):
                fail.check(got.get(k) == gb['flatten'][k], f'{where}.{k} (golden)', f'{got.get(k)!r} vs {gb["flatten"][k]}')
        if mode == 'mask4d' and 'attention_mask' in got:
            import hashlib

            digest = gb['mask4d']['attention_mask' if dtype == torch.bfloat16 else 'attention_mask_float32']
            allowed = (got['attention_mask'] == 0).to(torch.int8).cpu().numpy()
            fail.check(list(got['attention_mask'].shape) == digest['shape'], f'{where} (golden)', 'mask shape')
            fail.check(hashlib.sha256(allowed.tobytes()).hexdigest() == digest['allowed_int8_sha256'], f'{where} (golden)', 'allowed pattern sha256')
            vals = sorted({float(v) for v in torch.unique(got['attention_mask'].float()).tolist()})
            fail.check(vals == digest['values'], f'{where} (golden)', f'mask values {vals} vs {digest["values"]}')
        out[(mode, dtype)] = got
    return out


def check_mismatch(fail, Dataset):
    """A cooking-layout copy of cooking_512 whose block 1 lists a different first clip: ds[1] must raise an
    error naming the block and both counts; the other blocks still load."""
    import tempfile

    from streaming import MDSWriter

    raws = ref.read_raw(os.path.join(PACK, 'cooking_512'))
    paths = ref.audio_paths(raws[1])
    old = paths[0]

    def tokens(p):
        return int(ref.audio_tokens(ref.extract([p])[1].sum(-1))[0])

    new = next(p for p in ('tests/fixtures/audio/speech_0.1s.wav', 'tests/fixtures/audio/speech_7s.flac') if tokens(p) != tokens(old))
    n_tok = int((np.asarray(raws[1]['input_ids']) == ref.AUDIO_ID).sum())
    n_feat = n_tok - tokens(old) + tokens(new)
    columns = {'attention_mask': 'uint32', 'audio': 'str', 'input_ids': 'uint32', 'position_ids': 'uint32', 'text': 'str'}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'mismatch')
        with MDSWriter(out=out, columns=columns, compression=None, hashes=['sha1', 'xxh64']) as w:
            for i, raw in enumerate(raws):
                sample = {k: raw[k] for k in columns}
                if i == 1:
                    sample['audio'] = json.dumps([new] + paths[1:])
                w.write(sample)
        ds = Dataset(out, shuffle=False, seed=0)
        try:
            ds[0]
            ds[2]
        except Exception as e:  # noqa: BLE001
            fail.check(False, 'mismatch', f'blocks 0 / 2 should load: {type(e).__name__}: {e}')
        try:
            ds[1]
            fail.check(False, 'mismatch', f'block 1 ({n_tok} <|AUDIO|> tokens, audios give {n_feat}) loaded without an error')
        except Exception as e:  # noqa: BLE001
            msg = str(e)
            ok = '1' in msg and str(n_tok) in msg and str(n_feat) in msg
            fail.check(ok, 'mismatch', f'the error should name block 1 and the counts {n_tok} and {n_feat}: {msg!r}')
            print(f'  audio-count mismatch: {type(e).__name__}: {msg}')


def tiny_model(seed, attn, device):
    import torch
    from transformers import Qwen2AudioConfig, Qwen2AudioForConditionalGeneration

    cfg = Qwen2AudioConfig(
        audio_config={
            'model_type': 'qwen2_audio_encoder',
            'd_model': 64,
            'encoder_layers': 2,
            'encoder_attention_heads': 2,
            'encoder_ffn_dim': 128,
            'num_mel_bins': 128,
            'initializer_range': 0.2,
        },
        text_config={
            'model_type': 'qwen2',
            'vocab_size': 151936,
            'hidden_size': 64,
            'intermediate_size': 128,
            'num_hidden_layers': 2,
            'num_attention_heads': 2,
            'num_key_value_heads': 1,
            'max_position_embeddings': 8192,
            'use_cache': False,
            'tie_word_embeddings': False,
            'initializer_range': 0.2,
        },
        audio_token_index=ref.AUDIO_ID,
    )
    torch.manual_seed(seed)
    model = Qwen2AudioForConditionalGeneration._from_config(cfg, attn_implementation=attn, dtype=torch.float32)
    return model.to(device).train()


MODEL_KEYS = ('input_ids', 'position_ids', 'attention_mask', 'input_features', 'feature_attention_mask',
              'cu_seq_lens_q', 'cu_seq_lens_k', 'max_length_q', 'max_length_k')


def step(model, batch, labels, device, builtin=False):
    """One forward + backward; returns (loss, n_targets, gradient report, built-in loss or None)."""
    import torch

    model.zero_grad(set_to_none=True)
    inputs = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items() if k in MODEL_KEYS}
    labels = labels.to(device)
    hidden = model.model(**inputs, use_cache=False).last_hidden_state
    shift = labels[:, 1:]
    keep = shift != ref.IGNORE
    logits = model.lm_head(hidden[:, :-1][keep])
    loss = torch.nn.functional.cross_entropy(logits.float(), shift[keep])
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all() or not p.grad.abs().sum() > 0]
    builtin_loss = None
    if builtin:
        with torch.no_grad():
            builtin_loss = float(model(**inputs, labels=labels, use_cache=False).loss)
    return float(loss), int(keep.sum()), (len(trainable) - len(missing), len(trainable), missing), builtin_loss


def check_model(fail, name, layout, raws, collated, want_blocks, args, rows_out):
    import torch

    device = args.device
    model = tiny_model(args.seed, args.attn, device)
    block_size = len(want_blocks[0]['input_ids'])
    small = block_size <= 1024
    results = []
    spec_labels = torch.from_numpy(np.stack([b['labels'] for b in want_blocks[:2]]))
    # the notebook path, float32 mask for the float32 model
    nbs = [ref.notebook_block(raws[i], layout, i, torch.float32) for i in range(2)]
    nb = ref.notebook_collate(nbs, block_size, torch.float32)
    if layout == 'cooking':
        again = ref.apply_spec_rule(nb['labels'], nb['input_ids'], [b['cu_seqlens'] for b in want_blocks[:2]])
        fail.check(torch.equal(again, spec_labels), f'{name} notebook', 'notebook labels + spec rule != spec labels')
    ref_loss, ref_n, ref_g, _ = step(model, nb, spec_labels, device)
    results.append(('notebook path', 'spec labels', ref_loss, ref_n, ref_g, None, 0.0))
    for mode in MODES:
        batch = collated[(mode, torch.float32 if mode == 'mask4d' else None)]
        loss, n, g, builtin = step(model, batch, batch['labels'], device, builtin=small and mode != 'mask4d')
        rel = abs(loss - ref_loss) / abs(ref_loss)
        fail.check(n == ref_n, f'{name} model {mode}', f'{n} targets, notebook path {ref_n}')
        fail.check(rel <= args.loss_rtol, f'{name} model {mode}', f'loss {loss!r} vs notebook path {ref_loss!r} (rel {rel:.2g})')
        fail.check(not g[2], f'{name} model {mode}', f'no gradient for {g[2][:5]}')
        if builtin is not None:
            fail.check(abs(builtin - loss) <= args.loss_rtol * abs(loss), f'{name} model {mode}', f'built-in loss {builtin!r} vs {loss!r}')
        results.append((f'audiotok {mode}', 'loader labels', loss, n, g, builtin, rel))
    own_loss, own_n, own_g, _ = step(model, nb, nb['labels'], device)
    results.append(('notebook path', 'notebook labels', own_loss, own_n, own_g, None, abs(own_loss - ref_loss) / abs(ref_loss)))
    # controls: must differ from the notebook path
    causal = dict(nb)
    t = block_size
    tril = torch.tril(torch.ones(t, t, dtype=torch.bool))
    lo = torch.finfo(torch.float32).min
    causal['attention_mask'] = torch.where(tril, 0.0, lo)[None, None].expand(2, 1, t, t).contiguous()
    c_loss, c_n, c_g, _ = step(model, causal, spec_labels, device)
    c_rel = abs(c_loss - ref_loss) / abs(ref_loss)
    fail.check(c_rel > 10 * args.loss_rtol, f'{name} control', f'plain causal mask gives the same loss ({c_loss!r}): the check is blind')
    results.append(('control', 'causal, no doc bounds', c_loss, c_n, c_g, None, c_rel))
    zero = dict(nb)
    zero['attention_mask'] = torch.stack([
        torch.nn.functional.pad(b['attention_mask'], (0, t - b['attention_mask'].shape[-1], 0, t - b['attention_mask'].shape[-2]), value=0.0)
        for b in nbs
    ])
    z_loss, z_n, z_g, _ = step(model, zero, spec_labels, device)
    z_rel = abs(z_loss - ref_loss) / abs(ref_loss)
    results.append(('control', 'mask padded with 0.0', z_loss, z_n, z_g, None, z_rel))
    for r in results:
        rows_out.append((name,) + r)


def print_table(rows):
    head = ('fixture', 'path', 'labels', 'loss', 'targets', 'grads', 'built-in', 'rel diff')
    lines = [head]
    for name, path, labels, loss, n, g, builtin, rel in rows:
        lines.append((name, path, labels, f'{loss:.7f}', str(n), f'{g[0]}/{g[1]}', '-' if builtin is None else f'{builtin:.7f}', f'{rel:.1e}'))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    for j, line in enumerate(lines):
        print('  ' + ' | '.join(c.ljust(w) for c, w in zip(line, widths)))
        if j == 0:
            print('  ' + '-+-'.join('-' * w for w in widths))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--self-test', action='store_true', help="check the reference's own API wrappers (no audiotok)")
    ap.add_argument('--only', action='append', help='one pack fixture name (repeatable)')
    ap.add_argument('--feature-atol', type=float, default=1e-4)
    ap.add_argument('--lossy-atol', type=float, default=5e-4, help='for MP3 and Vorbis clips (another decoder)')
    ap.add_argument('--loss-rtol', type=float, default=1e-5)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--attn', default='sdpa', choices=['sdpa', 'eager'])
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--no-model', action='store_true', help='skip the forward/backward step')
    ap.add_argument('--loader-option', action='append', default=[], metavar='KEY=JSON',
                    help='extra PackedAudioDataset keyword, e.g. precision=\'"exact"\' (repeatable)')
    a = ap.parse_args()
    global LOSSY_ATOL
    LOSSY_ATOL = a.lossy_atol
    versions = ref.check_versions()
    os.chdir(ref.REPO)
    import torch

    torch.use_deterministic_algorithms(True, warn_only=True)
    if a.self_test:
        Dataset, Collator, what = ref.ReferenceDataset, ref.ReferenceCollator, 'reference (self-test)'
    else:
        try:
            from audiotok.loader import PackedAudioDataset as Dataset
            from audiotok.torch import Qwen2AudioCollator as Collator
        except ImportError as e:
            raise SystemExit(f'audiotok loader not importable ({e}); install ./bindings/python or use --self-test')
        import audiotok

        what = f'audiotok {getattr(audiotok, "__version__", "?")}'
        extra = {k: json.loads(v) for k, v in (o.split('=', 1) for o in a.loader_option)}
        if extra:
            import functools

            Dataset = functools.partial(Dataset, **extra)
            what += f' with {extra}'
    print(f'checking {what} with {json.dumps(versions)}, device {a.device}, attn {a.attn}')
    fail = Failures()
    table, stats = [], {}
    for name in a.only or ref.PACK_FIXTURES:
        t0 = time.perf_counter()
        with open(os.path.join(FIXTURES, f'{name}.json'), encoding='utf-8') as f:
            golden = json.load(f)
        before = len(fail.items)
        layout, raws, got_blocks, want_blocks = check_dataset(fail, name, Dataset, golden, a.feature_atol, stats)
        collated = {}
        if len(got_blocks) >= 2:
            collated = check_collator(fail, name, Collator, got_blocks[:2], want_blocks[:2], golden, a.feature_atol)
            if not a.no_model:
                check_model(fail, name, layout, raws, collated, want_blocks, a, table)
        print(f'{name}: {len(raws)} blocks, {"ok" if len(fail.items) == before else f"{len(fail.items) - before} failures"} '
              f'({time.perf_counter() - t0:.1f} s)')
    if not a.only or 'cooking_512' in a.only:
        check_mismatch(fail, Dataset)
    print(f'input_features: max |diff| vs the torch-path extractor {stats.get("feat_ref", float("nan")):.3g}, '
          f'vs its numpy path {stats.get("feat_np", float("nan")):.3g} (tolerance {a.feature_atol})')
    if stats.get('clips'):
        print('input_features per clip, max |diff|: loader vs torch-path extractor (the gate) | loader vs numpy path | torch vs numpy path')
        width = max(len(p) for p in stats['clips'])
        for path, (dt, dn, tn) in sorted(stats['clips'].items()):
            flag = '  > tolerance' if dt > a.feature_atol else ''
            print(f'  {path.ljust(width)}  {dt:.2e} | {dn:.2e} | {tn:.2e}{flag}')
    if table:
        print('model step (loss = mean shifted CE over labels != -100; rel diff vs "notebook path, spec labels"):')
        print_table(table)
    print(f'{len(fail.items)} failures')
    sys.exit(1 if fail.items else 0)


if __name__ == '__main__':
    main()
