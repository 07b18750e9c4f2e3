"""Reference for the packed-audio training loader (`audiotok.loader.PackedAudioDataset` and
`audiotok.torch.Qwen2AudioCollator`), written with the real packages.

Shared by tools/gen_loader_fixtures.py (golden fixtures in tests/fixtures/loader/) and
tools/check_loader.py. Needs the venv of tools/requirements-loader.txt (torch, transformers 5.23.0,
mosaicml-streaming 0.13.0, librosa 0.11.0 / soxr 1.1.0 / soundfile 0.14.0, numpy 2.1.3); run from the
repository root (the audio paths stored in the pack fixtures are relative to it).

Two independent paths over the same `audiotok pack` output (either layout):

notebook path (`notebook_block`, `notebook_collate`): the Qwen2-Audio packing notebook's training side,
    re-implemented from its described behaviour: `LocalDataset(dir)[i]` with the custom `uint32`
    encoding registered; `text` and `audio` popped; `labels = input_ids.copy()` (a stored `labels`
    column of the standard layout is overwritten that way); the document lengths popped
    (`attention_mask` in cooking layout, `seq_lengths` in the standard one); the rest to int64
    tensors; the additive block-diagonal causal mask [1, S, S] (0 allowed, finfo(dtype).min elsewhere,
    S = sum(lengths)); labels -100 on <|AUDIO|> and on the pad id (wherever it occurs); every audio
    loaded with librosa at 16 kHz and run through WhisperFeatureExtractor(feature_size=128) with
    padding="max_length", return_attention_mask=True; the <|AUDIO|> count check. Its collator stacks
    [B, T] rows, pads each [1, S, S] mask to [T, T] with finfo(dtype).min (pad_attention_mask_4d called
    with the min value) and stacks to [B, 1, T, T], and concatenates the audio features.

spec path (`spec_block`, `collate_rows`, `collate_mask4d`, `collate_flatten`): what
    /work/helpers/loader-spec.md says the loader yields (labels rule: stored labels or input_ids with
    -100 on <|AUDIO|>/<|audio_bos|>/<|audio_eos|> and the padding, plus -100 on the first token of every
    document); the mask4d mask built independently from per-position document ids; the flatten mode is
    transformers' own DataCollatorWithFlattening(return_flash_attn_kwargs=True, return_position_ids=True,
    separator_id=-100) on the blocks' documents (padding dropped).

`ReferenceDataset` / `ReferenceCollator` wrap the spec path behind the loader's API
(`PackedAudioDataset(mds_dir, *, shuffle=False, seed=0, num_threads=None)`, `ds[i]`, `len(ds)`;
`Qwen2AudioCollator(mode=..., dtype=...)(list_of_blocks)`), so tools/check_loader.py --self-test can run
its comparisons and the model step without audiotok.
"""

import json
import os
import warnings

import numpy as np

warnings.filterwarnings('ignore', message='PySoundFile failed')
warnings.filterwarnings('ignore', category=FutureWarning, module='librosa')

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
PACK_FIXTURES = ['standard_4096_greedy_all', 'standard_512_bfd_assistant', 'cooking_4096', 'cooking_512']

PINNED = {
    'torch': '2.15.0',
    'transformers': '5.23.0',
    'streaming': '0.13.0',
    'librosa': '0.11.0',
    'soundfile': '0.14.0',
    'soxr': '1.1.0',
    'numpy': '2.1.3',
}

AUDIO_ID, AUDIO_BOS_ID, AUDIO_EOS_ID = 151646, 151647, 151648
PAD_ID = 151643
IGNORE = -100
SR = 16000
N_MELS = 128
N_FRAMES = 3000


def check_versions():
    """Exits if an installed reference package is not the pinned version."""
    import librosa
    import soundfile
    import soxr
    import streaming
    import torch
    import transformers

    got = {
        'torch': torch.__version__.split('+')[0],
        'transformers': transformers.__version__,
        'streaming': streaming.__version__,
        'librosa': librosa.__version__,
        'soundfile': soundfile.__version__,
        'soxr': soxr.__version__,
        'numpy': np.__version__,
    }
    bad = {k: (got[k], v) for k, v in PINNED.items() if got[k] != v}
    if bad:
        raise SystemExit(f'reference package versions differ from tools/requirements-loader.txt: {bad}')
    return {**got, 'libsndfile': soundfile.__libsndfile_version__}


def register_uint32():
    """The notebook's custom MDS encoding `uint32`: raw little-endian u32 bytes, variable length."""
    from streaming.base.format.mds.encodings import Encoding, _encodings

    class UInt32(Encoding):
        def encode(self, obj) -> bytes:
            return obj.tobytes()

        def decode(self, data: bytes):
            return np.frombuffer(data, np.uint32)

    _encodings['uint32'] = UInt32


def layout_of(mds_dir):
    """'standard' or 'cooking', from the column names in index.json."""
    with open(os.path.join(mds_dir, 'index.json')) as f:
        names = set(json.load(f)['shards'][0]['column_names'])
    if {'input_ids', 'position_ids', 'labels', 'seq_lengths', 'audio'} <= names:
        return 'standard'
    if {'input_ids', 'position_ids', 'attention_mask', 'audio'} <= names:
        return 'cooking'
    raise ValueError(f'{mds_dir}: not an `audiotok pack` layout (columns {sorted(names)})')


def read_raw(mds_dir):
    """Every sample of the folder as streaming's LocalDataset decodes it (custom uint32 registered)."""
    from streaming import LocalDataset

    register_uint32()
    ds = LocalDataset(local=mds_dir)
    return [ds[i] for i in range(len(ds))]


def audio_paths(raw):
    a = raw['audio']
    return list(json.loads(a) if isinstance(a, str) else a)


def doc_lengths(raw, layout):
    return [int(x) for x in (raw['seq_lengths'] if layout == 'standard' else raw['attention_mask'])]


def resolve(path):
    return path if os.path.isabs(path) else os.path.join(REPO, path)


_AUDIO_CACHE = {}


def load_audio(path):
    """librosa.load(path, sr=16000): mono, soxr_hq (librosa 0.11.0's default res_type)."""
    import librosa

    if path not in _AUDIO_CACHE:
        _AUDIO_CACHE[path] = librosa.load(resolve(path), sr=SR)[0]
    return _AUDIO_CACHE[path]


_FE = None


def feature_extractor():
    """WhisperFeatureExtractor(feature_size=128), Qwen2-Audio's settings (no weights needed). With torch
    installed transformers uses its torch STFT path (`_torch_extract_fbank_features`, CPU)."""
    global _FE
    if _FE is None:
        from transformers import WhisperFeatureExtractor

        _FE = WhisperFeatureExtractor(feature_size=N_MELS)
    return _FE


def extract(paths, return_tensors='np'):
    """(input_features float32 [n, 128, 3000], feature_attention_mask int32 [n, 3000]) for the paths in
    order; n may be 0 (the extractor itself rejects an empty list, so that case is built here)."""
    if not paths:
        feats = np.zeros((0, N_MELS, N_FRAMES), np.float32)
        mask = np.zeros((0, N_FRAMES), np.int32)
        if return_tensors == 'pt':
            import torch

            return torch.from_numpy(feats), torch.from_numpy(mask)
        return feats, mask
    out = feature_extractor()(
        [load_audio(p) for p in paths],
        sampling_rate=SR,
        padding='max_length',
        return_attention_mask=True,
        return_tensors=return_tensors,
    )
    return out['input_features'], out['attention_mask']


def extract_numpy_path(paths):
    """The same call on transformers' numpy STFT path (what a torch-free venv gives), for comparison."""
    import transformers.models.whisper.feature_extraction_whisper as fe_mod

    saved = fe_mod.is_torch_available
    fe_mod.is_torch_available = lambda: False
    try:
        return extract(paths)
    finally:
        fe_mod.is_torch_available = saved


def audio_tokens(frames):
    """<|AUDIO|> tokens Qwen2-Audio scatters for an audio of `frames` valid mel frames."""
    frames = np.asarray(frames, dtype=np.int64)
    return (((frames - 1) // 2 + 1) - 2) // 2 + 1


def check_audio_count(index, input_ids, feature_attention_mask):
    n_tok = int((np.asarray(input_ids) == AUDIO_ID).sum())
    n_feat = int(audio_tokens(np.asarray(feature_attention_mask).sum(-1)).sum()) if len(feature_attention_mask) else 0
    if n_tok != n_feat:
        raise ValueError(
            f'block {index}: {n_tok} <|AUDIO|> tokens in input_ids, but its audios give {n_feat} '
            '(sum of (((L-1)//2+1)-2)//2+1 over feature_attention_mask.sum(-1))'
        )


# ---------------------------------------------------------------------------------------------------
# spec path


def spec_labels(raw, layout):
    """Labels per the spec (section "labels"), int64 [T]."""
    ids = np.asarray(raw['input_ids']).astype(np.int64)
    lengths = doc_lengths(raw, layout)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if lengths else np.zeros(0, np.int64)
    used = int(sum(lengths))
    if layout == 'standard':
        labels = np.asarray(raw['labels']).astype(np.int64)
    else:
        labels = ids.copy()
        labels[np.isin(ids, [AUDIO_ID, AUDIO_BOS_ID, AUDIO_EOS_ID])] = IGNORE
        labels[used:] = IGNORE
    labels[starts] = IGNORE
    return labels


def spec_block(raw, layout, index=0):
    """The dict of numpy arrays PackedAudioDataset yields for one block."""
    lengths = np.asarray(doc_lengths(raw, layout), dtype=np.int32)
    feats, fmask = extract(audio_paths(raw))
    block = {
        'input_ids': np.asarray(raw['input_ids']).astype(np.int64),
        'position_ids': np.asarray(raw['position_ids']).astype(np.int64),
        'labels': spec_labels(raw, layout),
        'seq_lengths': lengths,
        'cu_seqlens': np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32),
        'input_features': np.asarray(feats, dtype=np.float32),
        'feature_attention_mask': np.asarray(fmask, dtype=np.int32),
    }
    check_audio_count(index, block['input_ids'], block['feature_attention_mask'])
    return block


SPEC_DTYPES = {
    'input_ids': 'int64',
    'position_ids': 'int64',
    'labels': 'int64',
    'seq_lengths': 'int32',
    'cu_seqlens': 'int32',
    'input_features': 'float32',
    'feature_attention_mask': 'int32',
}


def doc_ids(block):
    """Per position: the index of its document in the block, -1 on the padding."""
    t = len(block['input_ids'])
    out = np.full(t, -1, np.int64)
    cu = block['cu_seqlens']
    for d in range(len(cu) - 1):
        out[cu[d] : cu[d + 1]] = d
    return out


def allowed_4d(blocks):
    """bool [B, 1, T, T]: query q may attend key k (same document, k <= q); nothing on the padding."""
    import torch

    rows = []
    for b in blocks:
        d = torch.from_numpy(doc_ids(b))
        same = (d[:, None] == d[None, :]) & (d[:, None] >= 0)
        rows.append(torch.tril(same)[None])
    return torch.stack(rows)


def _features(blocks):
    import torch

    feats = torch.from_numpy(np.concatenate([b['input_features'] for b in blocks], 0).astype(np.float32))
    fmask = torch.from_numpy(np.concatenate([b['feature_attention_mask'] for b in blocks], 0).astype(np.int32))
    return {'input_features': feats, 'feature_attention_mask': fmask}


def collate_rows(blocks):
    import torch

    out = {k: torch.from_numpy(np.stack([b[k] for b in blocks]).astype(np.int64)) for k in ('input_ids', 'labels', 'position_ids')}
    out.update(_features(blocks))
    return out


def collate_mask4d(blocks, dtype=None):
    import torch

    dtype = dtype or torch.bfloat16
    out = collate_rows(blocks)
    allowed = allowed_4d(blocks)
    out['attention_mask'] = torch.where(allowed, torch.tensor(0, dtype=dtype), torch.tensor(torch.finfo(dtype).min, dtype=dtype))
    return out


def collate_flatten(blocks):
    """transformers' DataCollatorWithFlattening on the blocks' documents, padding dropped."""
    from transformers import DataCollatorWithFlattening

    docs = []
    for b in blocks:
        cu = b['cu_seqlens']
        for d in range(len(cu) - 1):
            s, e = int(cu[d]), int(cu[d + 1])
            docs.append({'input_ids': b['input_ids'][s:e], 'labels': b['labels'][s:e]})
    collator = DataCollatorWithFlattening(return_flash_attn_kwargs=True, return_position_ids=True, separator_id=IGNORE)
    out = dict(collator(docs, return_tensors='pt'))
    out.update(_features(blocks))
    return out


def collate(blocks, mode, dtype=None):
    if mode == 'rows':
        return collate_rows(blocks)
    if mode == 'mask4d':
        return collate_mask4d(blocks, dtype)
    if mode == 'flatten':
        return collate_flatten(blocks)
    raise ValueError(f'unknown mode {mode!r}')


class ReferenceDataset:
    """The spec path behind PackedAudioDataset's API: ds[i] is block i; iterating gives an epoch (with
    shuffle, a permutation drawn from the seed)."""

    def __init__(self, mds_dir, *, shuffle=False, seed=0, num_threads=None):
        self.layout = layout_of(mds_dir)
        self.raw = read_raw(mds_dir)
        self.shuffle, self.seed = shuffle, seed

    def __len__(self):
        return len(self.raw)

    def __getitem__(self, i):
        return spec_block(self.raw[i], self.layout, i)

    def __iter__(self):
        order = range(len(self.raw))
        if self.shuffle:
            order = [int(i) for i in np.random.default_rng(self.seed).permutation(len(self.raw))]
        return (self[i] for i in order)


class ReferenceCollator:
    def __init__(self, mode='flatten', dtype=None):
        self.mode, self.dtype = mode, dtype

    def __call__(self, blocks):
        return collate(blocks, self.mode, self.dtype)


# ---------------------------------------------------------------------------------------------------
# notebook path


def block_diagonal_concat_inverted(lengths, dtype):
    """The notebook's mask: tril(ones(m, m)) per document on the diagonal of an S x S zero matrix, then 0
    where it is 1 and finfo(dtype).min elsewhere; [1, S, S]."""
    import torch

    s = int(sum(lengths))
    combined = torch.zeros(s, s, dtype=dtype)
    at = 0
    for m in lengths:
        combined[at : at + m, at : at + m] = torch.tril(torch.ones(m, m))
        at += m
    lo = torch.finfo(dtype).min
    return torch.where(combined == 1, torch.tensor(0, dtype=dtype), torch.tensor(lo, dtype=dtype))[None]


def notebook_block(raw, layout, index=0, dtype=None):
    """The notebook's DatasetFixed.__getitem__ on one block: dict of torch tensors."""
    import torch

    dtype = dtype or torch.bfloat16
    data = dict(raw)
    data.pop('text', None)
    files = data.pop('audio', '')
    data['labels'] = np.array(data['input_ids'], copy=True)
    lengths = [int(x) for x in data.pop('seq_lengths' if layout == 'standard' else 'attention_mask')]
    out = {k: torch.tensor(np.asarray(v).astype(np.int64)) for k, v in data.items()}
    out['attention_mask'] = block_diagonal_concat_inverted(lengths, dtype)
    out['labels'][out['labels'] == AUDIO_ID] = IGNORE
    out['labels'][out['labels'] == PAD_ID] = IGNORE
    paths = list(json.loads(files) if isinstance(files, str) else files)
    if paths:
        feats, fmask = extract(paths, return_tensors='pt')
        out['input_features'], out['feature_attention_mask'] = feats, fmask
        n_tok = int((out['input_ids'] == AUDIO_ID).sum())
        n_feat = int(audio_tokens(fmask.sum(-1).numpy()).sum())
        if n_tok != n_feat:
            raise ValueError(f'block {index}: {n_tok} <|AUDIO|> tokens, audios give {n_feat}')
    return out


def notebook_collate(blocks, block_size, dtype=None):
    """The notebook's collator: [B, T] rows, masks padded to [T, T] with the min value, features concatenated."""
    import torch
    import torch.nn.functional as F

    dtype = dtype or torch.bfloat16
    lo = torch.finfo(dtype).min
    masks = []
    for b in blocks:
        m = b['attention_mask']
        masks.append(F.pad(m, (0, block_size - m.shape[-1], 0, block_size - m.shape[-2]), value=lo))
    out = {
        'input_ids': torch.stack([b['input_ids'] for b in blocks]),
        'attention_mask': torch.stack(masks),
        'position_ids': torch.stack([b['position_ids'] for b in blocks]),
        'labels': torch.stack([b['labels'] for b in blocks]),
    }
    with_audio = [b for b in blocks if 'input_features' in b]
    if with_audio:
        out['input_features'] = torch.cat([b['input_features'] for b in with_audio], 0)
        out['feature_attention_mask'] = torch.cat([b['feature_attention_mask'] for b in with_audio], 0)
    return out


def apply_spec_rule(notebook_labels, input_ids, cu_seqlens):
    """The notebook's labels masked the spec's way on top: -100 also on <|audio_bos|>/<|audio_eos|>, on
    the padding and on every document's first token (a [T] or [B, T] tensor; cu_seqlens per row)."""
    import torch

    labels = notebook_labels.clone()
    ids = input_ids
    labels[(ids == AUDIO_BOS_ID) | (ids == AUDIO_EOS_ID) | (ids == AUDIO_ID)] = IGNORE
    rows = [labels] if labels.dim() == 1 else list(labels)
    cus = [cu_seqlens] if labels.dim() == 1 else cu_seqlens
    for row, cu in zip(rows, cus):
        cu = [int(x) for x in cu]
        row[cu[-1] :] = IGNORE
        for s in cu[:-1]:
            row[s] = IGNORE
    return labels
