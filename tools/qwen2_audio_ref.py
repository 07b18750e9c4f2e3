"""Reference building blocks for `audiotok pack` (profile qwen2-audio), written with the real packages.

Shared by tools/gen_pack_fixtures.py, tools/pack_reference.py, tools/check_pack_with_streaming.py and
tools/bench_pack.py. Every step is the reference library's own code path where one exists:

  tokenizer      transformers' Qwen2TokenizerFast (4.x) / Qwen2Tokenizer (5.x), loaded from a folder with
                 vocab.json + merges.txt (tools/fetch_qwen_tokenizer.sh) like `from_pretrained` loads a
                 Qwen2 checkpoint without tokenizer.json, plus the five Qwen2-Audio special tokens
                 (<|endoftext|> is the Qwen2 tokenizer's own eos/pad/unk, id 151643).
  audio length   librosa.load(path, sr=16000) (mono, res_type soxr_hq), n = len(samples).
  token count    frames = min(3000, ceil(n / 160)) (WhisperFeatureExtractor, padding="max_length",
                 truncation at 30 s, attention_mask[::160]); tokens = (((frames-1)//2+1) - 2)//2 + 1
                 (Qwen2AudioProcessor).
  expansion      Qwen2AudioProcessor.__call__ of transformers 4.57.6: each <|AUDIO|> in turn becomes
                 tokens x <|AUDIO|>, wrapped in <|audio_bos|>...<|audio_eos|> only when the placeholder
                 is neither directly preceded by <|audio_bos|> nor directly followed by <|audio_eos|>.
  chat template  tokenizer.apply_chat_template(messages, chat_template=..., tokenize=False).
  bfd            TRL's pack_dataset(strategy="bfd") rule (see bfd_bins()).
"""

import json
import math
import os
import warnings

# librosa falls back to audioread for MP3 it cannot open with soundfile and says so on every call
warnings.filterwarnings('ignore', message='PySoundFile failed')
warnings.filterwarnings('ignore', category=FutureWarning, module='librosa')

AUDIO_TOKEN = '<|AUDIO|>'
AUDIO_BOS = '<|audio_bos|>'
AUDIO_EOS = '<|audio_eos|>'
SPECIAL_IDS = {
    '<|endoftext|>': 151643,
    '<|im_start|>': 151644,
    '<|im_end|>': 151645,
    AUDIO_TOKEN: 151646,
    AUDIO_BOS: 151647,
    AUDIO_EOS: 151648,
}
PAD_ID = 151643
AUDIO_ID, AUDIO_BOS_ID, AUDIO_EOS_ID = 151646, 151647, 151648
IM_START_ID, IM_END_ID = 151644, 151645

# The Qwen2-Audio-7B-Instruct chat template, as transformers' own Qwen2-Audio processor test pins it for
# that checkpoint (huggingface/transformers tests/models/qwen2_audio/test_processor_qwen2_audio.py,
# prepare_processor_dict; its test_chat_template checks the Hub checkpoint renders the same prompt).
QWEN2_AUDIO_CHAT_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant."
    "<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if 'audio' in content or 'audio_url' in content or message['type'] == 'audio' %}"
    "{% set audio_count.value = audio_count.value + 1 %}Audio {{ audio_count.value }}: "
    "<|audio_bos|><|AUDIO|><|audio_eos|>\n{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% endif %}"
)


def load_tokenizer(folder):
    """Qwen2-Audio tokenizer from a folder with vocab.json + merges.txt (no tokenizer.json)."""
    import transformers

    if transformers.__version__.startswith('4.'):
        from transformers import Qwen2TokenizerFast as cls
    else:  # transformers 5 folds the fast tokenizer into Qwen2Tokenizer (tokenizers backend)
        from transformers import Qwen2Tokenizer as cls
    for f in ('vocab.json', 'merges.txt'):
        if not os.path.exists(os.path.join(folder, f)):
            raise SystemExit(f'{folder}/{f} missing: run tools/fetch_qwen_tokenizer.sh first')
    tok = cls.from_pretrained(folder)
    tok.add_special_tokens({'additional_special_tokens': [t for t in SPECIAL_IDS if t != '<|endoftext|>']})
    got = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_IDS}
    assert got == SPECIAL_IDS, got
    return tok


def encode(tok, text):
    """Token ids with special tokens recognised and nothing added (no BOS/EOS)."""
    return tok(text, add_special_tokens=False)['input_ids']


def sample_count_16k(path):
    """Sample count of the 16 kHz mono signal, exactly as the notebook gets it."""
    import librosa

    y, sr = librosa.load(path, sr=16000)
    assert sr == 16000
    return int(y.shape[-1])


def audio_tokens(n):
    frames = min(3000, math.ceil(n / 160)) if n > 0 else 0
    input_length = (frames - 1) // 2 + 1
    return (input_length - 2) // 2 + 1


def expand_audio(text, token_counts):
    """Qwen2AudioProcessor (transformers 4.57.6) placeholder expansion, one count per <|AUDIO|> in order.

    Raises ValueError when the number of placeholders differs from the number of counts (the processor
    raises too)."""
    n = text.count(AUDIO_TOKEN)
    if n != len(token_counts):
        raise ValueError(f'{n} {AUDIO_TOKEN} placeholders but {len(token_counts)} audio files')
    out = []
    pos = 0
    for count in token_counts:
        start = text.index(AUDIO_TOKEN, pos)
        end = start + len(AUDIO_TOKEN)
        has_bos = text[:start].endswith(AUDIO_BOS)
        has_eos = text[end:].startswith(AUDIO_EOS)
        rep = AUDIO_TOKEN * count
        if not has_bos and not has_eos:
            rep = AUDIO_BOS + rep + AUDIO_EOS
        out.append(text[pos:start])
        out.append(rep)
        pos = end
    out.append(text[pos:])
    return ''.join(out)


def render_messages(tok, messages, template=QWEN2_AUDIO_CHAT_TEMPLATE, add_generation_prompt=False):
    return tok.apply_chat_template(
        messages, chat_template=template, tokenize=False, add_generation_prompt=add_generation_prompt
    )


def row_audio_list(row):
    a = row.get('audio', [])
    if a is None:
        return []
    if isinstance(a, str):
        return [a]
    if isinstance(a, list) and all(isinstance(p, str) for p in a):
        return a
    raise ValueError('"audio" must be a path or a list of paths')


def row_text(tok, row, template=QWEN2_AUDIO_CHAT_TEMPLATE):
    if 'text' in row:
        if not isinstance(row['text'], str):
            raise ValueError('"text" must be a string')
        return row['text']
    if 'messages' in row:
        return render_messages(tok, row['messages'], template)
    raise ValueError('row has neither "text" nor "messages"')


def read_rows(path):
    """[(where, row_or_None, error_or_None)] for a JSON array file or a JSONL file.

    where is the 1-based line number (JSONL) or the 0-based array index (JSON array)."""
    with open(path, encoding='utf-8') as f:
        data = f.read()
    if data.lstrip().startswith('['):
        rows = json.loads(data)
        return [(i, r, None if isinstance(r, dict) else 'row is not a JSON object') for i, r in enumerate(rows)]
    out = []
    for i, line in enumerate(data.split('\n'), start=1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:
            out.append((i, None, f'malformed JSON: {e.msg}'))
            continue
        out.append((i, r, None if isinstance(r, dict) else 'row is not a JSON object'))
    return out


class Documents:
    """Rows -> tokenised documents (ids, audio paths), rejects with reasons, cached audio lengths."""

    def __init__(self, tok, template=QWEN2_AUDIO_CHAT_TEMPLATE, cache=True):
        self.tok = tok
        self.template = template
        self.cache = cache
        self.lengths = {}

    def audio_len(self, path):
        if path not in self.lengths or not self.cache:
            if not os.path.exists(path):
                raise FileNotFoundError(f'{path}: no such file')
            try:
                self.lengths[path] = sample_count_16k(path)
            except Exception as e:  # librosa/soundfile/audioread raise many types
                raise OSError(f'{path}: cannot decode: {type(e).__name__}') from e
        return self.lengths[path]

    def document(self, row):
        """(ids, audio_paths) or raises ValueError/OSError with a reason."""
        paths = row_audio_list(row)
        text = row_text(self.tok, row, self.template)
        if text.count(AUDIO_TOKEN) != len(paths):
            raise ValueError(f'{text.count(AUDIO_TOKEN)} {AUDIO_TOKEN} placeholders but {len(paths)} audio files')
        counts = [audio_tokens(self.audio_len(p)) for p in paths]
        return encode(self.tok, expand_audio(text, counts)), paths


def reason_kind(msg):
    """Coarse reason category for comparing reject lists across implementations."""
    m = msg.lower()
    if 'malformed json' in m or 'not a json object' in m:
        return 'malformed_json'
    if 'no such file' in m:
        return 'audio_missing'
    if 'cannot decode' in m:
        return 'audio_undecodable'
    if 'placeholder' in m:
        return 'placeholder_mismatch'
    if 'longer than the block' in m:
        return 'too_long'
    return 'invalid_row'


def greedy_bins(lengths, block):
    """Next-fit in input order: indices per block. Every length must be <= block."""
    bins, cur, used = [], [], 0
    for i, n in enumerate(lengths):
        if cur and used + n > block:
            bins.append(cur)
            cur, used = [], 0
        cur.append(i)
        used += n
    if cur:
        bins.append(cur)
    return bins


def bfd_bins(lengths, block):
    """TRL pack_dataset(strategy="bfd") binning (trl 1.16.0 data_utils._pack_bfd), one batch.

    Order: stable sort by length descending (pyarrow sort_indices is stable: equal lengths keep input
    order). For each document the best fit is the smallest remaining space >= length among open bins
    (segment tree over space values); among bins with that exact space the one that reached it first
    (FIFO deque per space value); when no open bin fits, a new bin is appended. Bins are emitted in
    creation order, documents inside a bin in insertion order (so decreasing length)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    from collections import defaultdict, deque

    space_to_bin = defaultdict(deque)
    spaces = set()  # open space values (> 0), the segment tree's content besides `block` itself
    bins = []
    for i in order:
        n = lengths[i]
        assert 0 < n <= block
        fits = [s for s in spaces if s >= n]
        space = min(fits) if fits else block
        if space < block:
            b = space_to_bin[space].popleft()
            if not space_to_bin[space]:
                spaces.discard(space)
        else:
            b = {'ids': [], 'length': 0}
            bins.append(b)
        b['ids'].append(i)
        b['length'] += n
        space -= n
        space_to_bin[space].append(b)
        if space > 0:
            spaces.add(space)
    return [b['ids'] for b in bins]


def labels_for(ids, train_on='all'):
    """Standard-mode labels of one document (unshifted): -100 on audio tokens; with train_on='assistant'
    also on everything outside assistant turns (<|im_start|>assistant\\n ... <|im_end|> inclusive)."""
    masked = {AUDIO_ID, AUDIO_BOS_ID, AUDIO_EOS_ID}
    out = [-100 if t in masked else t for t in ids]
    if train_on == 'assistant':
        header = [IM_START_ID, ASSISTANT_ID, NEWLINE_ID]
        keep = [False] * len(ids)
        i = 0
        while i < len(ids):
            if ids[i : i + 3] == header:
                j = i + 3
                while j < len(ids) and ids[j] != IM_END_ID:
                    keep[j] = True
                    j += 1
                if j < len(ids):
                    keep[j] = True  # the turn's <|im_end|>
                i = j + 1
            else:
                i += 1
        out = [v if k else -100 for v, k in zip(out, keep)]
    return out


ASSISTANT_ID = 77091  # "assistant" in the Qwen2 BPE (checked in gen_pack_fixtures.py)
NEWLINE_ID = 198  # "\n"


def register_uint32():
    """Registers the notebook's custom MDS encoding `uint32` (a numpy uint32 array as raw bytes,
    variable length) in streaming's encoding table, as the notebook does."""
    import numpy as np
    from streaming.base.format.mds.encodings import Encoding, _encodings

    class UInt32(Encoding):
        def encode(self, obj) -> bytes:
            return obj.tobytes()

        def decode(self, data: bytes):
            return np.frombuffer(data, np.uint32)

    _encodings['uint32'] = UInt32
