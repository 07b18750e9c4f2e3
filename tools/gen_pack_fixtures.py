#!/usr/bin/env python3
"""Writes the `audiotok pack` golden fixtures in tests/fixtures/pack/ with the real reference packages.

    tools/fetch_qwen_tokenizer.sh
    python3 -m venv tmp/venv-pack && tmp/venv-pack/bin/pip install -r tools/requirements-pack.txt
    tmp/venv-pack/bin/python tools/gen_pack_fixtures.py            # everything below
    .venv/bin/python tools/gen_pack_fixtures.py --check-tokenizer  # transformers 5.x gives the same ids

Outputs (committed; the Rust tests need no Python):
  tokenizer_ids.json     {"strings": [{"text", "ids"}], "processor": [...], "build": {...}}: ~40 strings
                         tokenised by transformers' Qwen2TokenizerFast loaded from the fetched
                         vocab.json + merges.txt (from_pretrained on the folder: the slow->fast
                         converter builds NFC + Split(Qwen2 regex, isolated) + ByteLevel(use_regex=false)
                         + byte-level BPE) plus the five Qwen2-Audio special tokens (added with
                         add_special_tokens, ids 151644..151648 after <|endoftext|> = 151643).
                         "processor": texts + audio clips run through transformers'
                         Qwen2AudioProcessor (WhisperFeatureExtractor, no weights needed): the ids the
                         real processor makes, i.e. expansion + bos/eos wrapping + tokenisation.
  chat_template.jinja    the Qwen2-Audio-7B-Instruct chat template (source in README.md)
  chat_template.jsonl    {"name", "template", "messages", "add_generation_prompt", "rendered"} per case,
                         rendered by tokenizer.apply_chat_template(tokenize=False); template "hub" is
                         chat_template.jinja, "processor_default" is Qwen2AudioProcessor's built-in one
  rows.json              good rows as a JSON array (the notebook's input form), incl. one too long
  rows.jsonl             the same rows interleaved with bad ones (missing / undecodable audio,
                         placeholder count mismatches, malformed JSON line, row without text)
  expected_counts.json   per audio path: 16 kHz sample count (librosa.load(sr=16000), soxr_hq), tokens
  expected_rejects.json  per block size: rejected rows of rows.jsonl with reason kinds
  cooking_4096/, cooking_512/      pack_reference.py (the notebook loop, MDSWriter + uint32 encoding)
                                   on rows.jsonl; identical to running it on rows.json
  standard_4096_greedy_all/, standard_512_bfd_assistant/   pack_reference.py --standard
Rerunning rewrites everything with identical bytes.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qwen2_audio_ref as ref  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
OUT = os.path.join(REPO, 'tests', 'fixtures', 'pack')
TOKENIZER = os.path.join(OUT, 'qwen2-tokenizer')
A = 'tests/fixtures/audio/'
# a copy of speech_0.1s.wav under a name with spaces and non-ASCII characters (made by gen_rows)
UNICODE_CLIP = 'tests/fixtures/pack/audio/klip pendek \u00e9t\u00e9 \u4e2d\u6587.wav'

PINNED = {
    'transformers': '4.57.6',
    'tokenizers': '0.22.2',
    'streaming': '0.13.0',
    'librosa': '0.11.0',
    'soxr': '1.1.0',
    'numpy': '2.1.3',
    'jinja2': '3.1.6',
}

SPECIALS = '<|endoftext|><|im_start|><|im_end|><|AUDIO|><|audio_bos|><|audio_eos|>'

STRINGS = [
    '',
    ' ',
    'Hello, world.',
    ' Hello world',
    'Hello  world  ',
    'hello\nworld\n\n\nend',
    '\n',
    '\n\n',
    '  \n  \n',
    'tabs\tand\t\ttabs',
    'line\r\nbreak\rcarriage',
    "It's what they'd've said, I'M SURE we'LL see.",
    'Selamat pagi! Apa khabar? Saya suka makan nasi lemak di Kuala Lumpur.',
    'Terima kasih kerana mendengar. Boleh terangkan apa yang berlaku dalam audio ini?',
    '你好，世界！这段音频说了什么？',
    '语音识别：今天天气很好，我们去公园散步吧。',
    'Emoji: 😀👍🏽🇲🇾 ❤️ and ZWJ 👨‍👩‍👧',
    'Numbers 1234567890 3.14159 -42 1,000,000 2024-06-01',
    '0123456789012345678901234567890',
    'caf\u00e9 vs cafe\u0301 (NFC folds the second)',
    'Ångström \u212b and \uff21\uff22\uff23 fullwidth',
    'def f(x):\n    return x ** 2  # square\n',
    'for (int i = 0; i < n; ++i) { sum += a[i]; }',
    '{"key": [1, 2, {"nested": null}], "t": true}',
    '    leading spaces and trailing     ',
    '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n',
    '<|im_start|>user\nAudio 1: <|audio_bos|><|AUDIO|><|audio_eos|>\nWhat is said?<|im_end|>\n<|im_start|>assistant\n',
    SPECIALS,
    '<|AUDIO|>' * 7,
    '<|audio_bos|>' + '<|AUDIO|>' * 25 + '<|audio_eos|>',
    'x<|AUDIO|>y <|AUDIO|> z',
    '<|endoftext|>text after end<|endoftext|>',
    '<|im_end|>\n<|im_start|>assistant\nSure.<|im_end|>',
    '<|AUDIO |> <|audio|> <|im_start> <im_end|> (not special)',
    '<<|AUDIO|>>',
    ' <|AUDIO|> ',
    'Mixed 中文 English Melayu 123 😀\n<|im_end|>',
    'a' * 200,
    '!!!???...,,,;;;',
    '\u00a0non-breaking\u2009thin\u3000ideographic spaces',
    'Zero\u200bwidth\u200cjoiners\u200d',
    '\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd \u0928\u092e\u0938\u094d\u0924\u0947',
]

# (text, [audio paths]) for the real Qwen2AudioProcessor
PROCESSOR_CASES = [
    ('<|im_start|>user\n<|AUDIO|>What is said?<|im_end|>\n', [A + 'speech_1s.wav']),
    ('<|audio_bos|><|AUDIO|><|audio_eos|>Transcribe.', [A + 'speech_7s.flac']),
    ('Two: <|AUDIO|> and <|AUDIO|>.', [A + 'speech_0.1s.wav', A + 'speech_30s.flac']),
    ('Only bos: <|audio_bos|><|AUDIO|> end', [A + 'speech_1s.wav']),
    ('Only eos: <|AUDIO|><|audio_eos|> end', [A + 'speech_1s.wav']),
    ('Adjacent <|AUDIO|><|AUDIO|>', [A + 'speech_0.1s.wav', A + 'speech_0.1s.wav']),
    ('Long <|AUDIO|> is cut at 30 s', [A + 'speech_45s.flac']),
    ('Stereo 44.1k <|AUDIO|>', [A + 'speech_7s_44k_stereo.flac']),
]


def chat_cases():
    sys_msg = {'role': 'system', 'content': 'You are a helpful assistant.'}
    audio = lambda p: {'type': 'audio', 'audio_url': p}  # noqa: E731
    text = lambda t: {'type': 'text', 'text': t}  # noqa: E731
    return [
        ('string_content_no_system', [{'role': 'user', 'content': 'Hello'}, {'role': 'assistant', 'content': 'Hi!'}]),
        ('string_content_with_system', [
            {'role': 'system', 'content': 'Jawab dalam Bahasa Melayu.'},
            {'role': 'user', 'content': 'Apa khabar?'},
            {'role': 'assistant', 'content': 'Khabar baik.'},
        ]),
        ('one_audio', [{'role': 'user', 'content': [audio('a.wav'), text('What is said?')]},
                       {'role': 'assistant', 'content': 'Hello, world.'}]),
        ('two_turns_two_audios', [
            sys_msg,
            {'role': 'user', 'content': [audio('a.wav'), text("What's that sound?")]},
            {'role': 'assistant', 'content': 'It is the sound of glass shattering.'},
            {'role': 'user', 'content': [audio('b.flac'), text('How about this one?')]},
            {'role': 'assistant', 'content': 'A throat clearing.'},
        ]),
        ('two_audios_one_turn', [{'role': 'user', 'content': [text('Compare '), audio('a.wav'), audio('b.wav'),
                                                              text(' please.')]}]),
        ('audio_key_instead_of_audio_url', [{'role': 'user', 'content': [{'type': 'audio', 'audio': 'x.wav'},
                                                                         text('Transcribe')]}]),
        ('type_audio_without_path', [{'role': 'user', 'content': [{'type': 'audio'}, text('Transcribe')]}]),
        ('system_as_list', [
            {'role': 'system', 'content': [text('List system prompt.')]},
            {'role': 'user', 'content': [audio('a.wav')]},
        ]),
        ('unicode_and_newlines', [{'role': 'user', 'content': '你好\n\nSelamat 😀\n'},
                                  {'role': 'assistant', 'content': '  spaced  \n'}]),
        ('assistant_last_list_content', [{'role': 'user', 'content': [audio('a.wav'), text('Q?')]},
                                         {'role': 'assistant', 'content': [text('Answer one. '),
                                                                           text('Answer two.')]}]),
        ('only_audio_user_turn', [{'role': 'user', 'content': [audio('a.wav')]}]),
    ]


def good_rows():
    """The notebook's kind of rows (text + audio), plus a messages row and edge cases."""
    im = lambda role, body: f'<|im_start|>{role}\n{body}<|im_end|>\n'  # noqa: E731
    sysp = im('system', 'You are a helpful assistant.')
    return [
        {'text': sysp + im('user', '<|AUDIO|>\nWhat is said in the audio?') + im('assistant', 'Hello, world.'),
         'audio': A + 'speech_1s.wav'},
        {'text': im('user', 'Audio 1: <|AUDIO|>\nAudio 2: <|AUDIO|>\nWhich clip is longer?')
         + im('assistant', 'The second one, about seven seconds.'),
         'audio': [A + 'speech_0.1s.wav', A + 'speech_7s.flac']},
        {'text': sysp + im('user', '<|audio_bos|><|AUDIO|><|audio_eos|>\nTranscribe this recording.')
         + im('assistant', 'A long recording with several voices.'),
         'audio': [A + 'speech_30s.flac']},
        {'messages': [
            {'role': 'system', 'content': 'Anda pembantu yang berguna.'},
            {'role': 'user', 'content': [{'type': 'audio', 'audio_url': A + 'speech_7s_44k_stereo.flac'},
                                         {'type': 'text', 'text': 'Apa yang dikatakan dalam audio ini?'}]},
            {'role': 'assistant', 'content': 'Penutur bercakap tentang cuaca hari ini.'},
        ], 'audio': [A + 'speech_7s_44k_stereo.flac']},
        {'text': im('user', 'Terangkan audio ini: <|AUDIO|>') + im('assistant', 'Ia rakaman ucapan yang panjang, '
                                                                   'dipotong pada 30 saat.'),
         'audio': A + 'speech_45s.flac'},
        {'text': im('user', '这段音频说了什么？<|AUDIO|>') + im('assistant', '它说：“你好，世界。” 😀'),
         'audio': [A + 'formats/clip.mp3']},
        {'text': im('user', 'Only bos: <|audio_bos|><|AUDIO|> no eos after it.')
         + im('assistant', 'def f(x):\n    return x ** 2\n'),
         'audio': [A + 'formats/clip.ogg']},
        {'text': im('user', 'No audio at all, just text: 1 2 3 4 5.') + im('assistant', 'Okay.'), 'audio': []},
        {'text': im('user', 'Adjacent <|AUDIO|><|AUDIO|> clips.') + im('assistant', 'Two short clips.'),
         'audio': [A + 'speech_0.1s.wav', A + 'speech_1s.wav']},
        {'messages': [
            {'role': 'user', 'content': [{'type': 'text', 'text': 'First: '},
                                         {'type': 'audio', 'audio_url': A + 'formats/clip.flac'},
                                         {'type': 'text', 'text': 'Second: '},
                                         {'type': 'audio', 'audio_url': A + 'formats/pcm_s24.wav'}]},
            {'role': 'assistant', 'content': 'Both say hello.'},
            {'role': 'user', 'content': 'Thanks.'},
            {'role': 'assistant', 'content': 'You are welcome.'},
        ], 'audio': [A + 'formats/clip.flac', A + 'formats/pcm_s24.wav']},
        # too long for a 4096 block: 6 x 30 s clips
        {'text': im('user', 'Six long clips: ' + '<|AUDIO|> ' * 6) + im('assistant', 'Too long.'),
         'audio': [A + 'speech_45s.flac'] * 3 + [A + 'speech_30s.flac'] * 3},
        {'text': im('user', 'Same clip again <|AUDIO|>') + im('assistant', 'Hello, world.'),
         'audio': A + 'speech_1s.wav'},
        {'text': im('user', 'Short one <|AUDIO|>') + im('assistant', 'A fragment.'),
         'audio': A + 'formats/extensible_s16_stereo.wav'},
        {'text': sysp + im('user', 'Bandingkan <|AUDIO|> dengan <|AUDIO|>.')
         + im('assistant', 'Kedua-duanya rakaman panjang; yang kedua dipotong pada 30 saat.'),
         'audio': [A + 'speech_30s.flac', A + 'speech_45s.flac']},
        {'text': im('user', 'Count: 1, 2, 3. <|AUDIO|>') + im('assistant', 'One, two, three.'),
         'audio': A + 'speech_0.1s.wav'},
        {'text': im('user', '<|AUDIO|>') + im('assistant', 'Hello, world.'), 'audio': A + 'formats/pcm_s24.wav'},
        {'text': sysp + im('user', 'Summarise <|audio_bos|><|AUDIO|><|audio_eos|> and <|AUDIO|>.')
         + im('assistant', 'A seven second clip and a thirty second clip.'),
         'audio': [A + 'speech_7s.flac', A + 'speech_30s.flac']},
        {'text': im('user', 'Emoji 🎧🔊 and tabs\tinside <|AUDIO|>') + im('assistant', 'Noted.\n\nBye.'),
         'audio': [A + 'formats/clip.mp3']},
        {'text': im('user', 'Dua klip: <|AUDIO|> <|AUDIO|>')
         + im('assistant', 'Klip pertama pendek, klip kedua panjang.')
         + im('user', 'Terima kasih.') + im('assistant', 'Sama-sama.'),
         'audio': [A + 'speech_1s.wav', A + 'speech_45s.flac']},
        {'text': im('user', 'Plain question without audio?') + im('assistant', 'Plain answer.'), 'audio': []},
        {'text': im('user', 'Ogg <|AUDIO|> once more') + im('assistant', '好的。'), 'audio': A + 'formats/clip.ogg'},
        {'text': im('user', 'Long again <|AUDIO|>') + im('assistant', 'Thirty seconds.'),
         'audio': A + 'speech_30s.flac'},
        {'text': im('user', 'Last <|AUDIO|>') + im('assistant', 'The end.'), 'audio': A + 'speech_7s.flac'},
        # non-ASCII path with spaces: json.dumps escapes it (\\uXXXX) in the audio column
        {'text': im('user', 'Nama fail bukan ASCII <|AUDIO|>') + im('assistant', 'Baik.'), 'audio': [UNICODE_CLIP]},
    ]


def bad_lines():
    """JSONL lines that must be rejected (inserted between the good rows)."""
    im = lambda role, body: f'<|im_start|>{role}\n{body}<|im_end|>\n'  # noqa: E731
    return [
        json.dumps({'text': im('user', 'Missing <|AUDIO|>'), 'audio': A + 'does_not_exist.wav'}),
        json.dumps({'text': im('user', 'Two placeholders <|AUDIO|> <|AUDIO|> one file'),
                    'audio': [A + 'speech_1s.wav']}),
        '{"text": "malformed, no closing brace", "audio": "x.wav"',
        json.dumps({'text': im('user', 'Undecodable <|AUDIO|>'), 'audio': A + 'formats/text.wav'}),
        json.dumps({'text': im('user', 'One placeholder <|AUDIO|>, two files'),
                    'audio': [A + 'speech_1s.wav', A + 'speech_0.1s.wav']}),
        json.dumps({'audio': A + 'speech_1s.wav'}),
    ]


def write_json(name, obj):
    with open(os.path.join(OUT, name), 'w', encoding='utf-8') as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write('\n')


def check_versions():
    import jinja2
    import librosa
    import numpy
    import soxr
    import streaming
    import tokenizers
    import transformers

    got = {
        'transformers': transformers.__version__,
        'tokenizers': tokenizers.__version__,
        'streaming': streaming.__version__,
        'librosa': librosa.__version__,
        'soxr': soxr.__version__,
        'numpy': numpy.__version__,
        'jinja2': jinja2.__version__,
    }
    assert got == PINNED, got
    return got


def gen_tokenizer_ids(tok, versions):
    import librosa
    import numpy as np
    from transformers import Qwen2AudioProcessor, WhisperFeatureExtractor

    assert ref.encode(tok, 'assistant') == [ref.ASSISTANT_ID]
    assert ref.encode(tok, '\n') == [ref.NEWLINE_ID]
    strings = [{'text': s, 'ids': ref.encode(tok, s)} for s in STRINGS]
    # tok(text) with default add_special_tokens=True adds nothing for Qwen2 either
    for s in strings:
        assert tok(s['text'])['input_ids'] == s['ids']
    fe = WhisperFeatureExtractor(feature_size=128)
    proc = Qwen2AudioProcessor(feature_extractor=fe, tokenizer=tok)
    processor = []
    for text, paths in PROCESSOR_CASES:
        audios = [librosa.load(os.path.join(REPO, p), sr=16000)[0] for p in paths]
        out = proc(text=text, audio=audios, sampling_rate=16000, return_tensors='np')
        ids = out['input_ids'][0].tolist()
        counts = [ref.audio_tokens(len(a)) for a in audios]
        assert np.asarray(out['feature_attention_mask']).sum(-1).tolist() == [
            min(3000, -(-len(a) // 160)) for a in audios
        ]
        mine = ref.encode(tok, ref.expand_audio(text, counts))
        assert mine == ids, (text, mine[:40], ids[:40])
        processor.append({'text': text, 'audio': paths, 'audio_tokens': counts, 'ids': ids})
    build = json.loads(tok.backend_tokenizer.to_str())
    write_json(
        'tokenizer_ids.json',
        {
            'generator': 'tools/gen_pack_fixtures.py',
            'versions': {k: versions[k] for k in ('transformers', 'tokenizers', 'librosa', 'soxr')},
            'tokenizer': 'Qwen2TokenizerFast.from_pretrained(folder with vocab.json + merges.txt) + '
            'add_special_tokens({"additional_special_tokens": [<|im_start|>, <|im_end|>, <|AUDIO|>, '
            '<|audio_bos|>, <|audio_eos|>]})',
            'special_ids': ref.SPECIAL_IDS,
            'build': {k: build[k] for k in ('normalizer', 'pre_tokenizer', 'post_processor', 'decoder')}
            | {'model': {k: v for k, v in build['model'].items() if k not in ('vocab', 'merges')}},
            'strings': strings,
            'processor': processor,
        },
    )
    return len(strings), len(processor)


def gen_chat_templates(tok):
    from transformers import Qwen2AudioProcessor, WhisperFeatureExtractor

    with open(os.path.join(OUT, 'chat_template.jinja'), 'w', encoding='utf-8') as f:
        f.write(ref.QWEN2_AUDIO_CHAT_TEMPLATE)
    proc = Qwen2AudioProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=tok)
    templates = {'hub': ref.QWEN2_AUDIO_CHAT_TEMPLATE, 'processor_default': proc.default_chat_template}
    lines = []
    for name, messages in chat_cases():
        for tname, tpl in templates.items():
            for agp in (False, True):
                rendered = tok.apply_chat_template(
                    messages, chat_template=tpl, tokenize=False, add_generation_prompt=agp
                )
                lines.append({'name': name, 'template': tname, 'messages': messages,
                              'add_generation_prompt': agp, 'rendered': rendered})
    with open(os.path.join(OUT, 'chat_template.jsonl'), 'w', encoding='utf-8') as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + '\n')
    with open(os.path.join(OUT, 'chat_template_processor_default.jinja'), 'w', encoding='utf-8') as f:
        f.write(proc.default_chat_template)
    return len(lines)


def gen_rows():
    os.makedirs(os.path.dirname(os.path.join(REPO, UNICODE_CLIP)), exist_ok=True)
    shutil.copyfile(os.path.join(REPO, A, 'speech_0.1s.wav'), os.path.join(REPO, UNICODE_CLIP))
    good = good_rows()
    with open(os.path.join(OUT, 'rows.json'), 'w', encoding='utf-8') as f:
        json.dump(good, f, ensure_ascii=False, indent=1)
        f.write('\n')
    bad = bad_lines()
    lines = []
    for i, row in enumerate(good):
        lines.append(json.dumps(row, ensure_ascii=False))
        if i < len(bad):
            lines.append(bad[i])
    with open(os.path.join(OUT, 'rows.jsonl'), 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')
    paths = sorted({p for r in good for p in ref.row_audio_list(r)})
    counts = {}
    for p in paths:
        n = ref.sample_count_16k(os.path.join(REPO, p))
        counts[p] = {'samples_16k': n, 'frames': min(3000, -(-n // 160)), 'tokens': ref.audio_tokens(n)}
    write_json('expected_counts.json', {
        'generator': 'tools/gen_pack_fixtures.py',
        'reference': 'librosa.load(path, sr=16000) (mono, res_type="soxr_hq"); frames = min(3000, ceil(n/160)); '
                     'tokens = (((frames-1)//2+1) - 2)//2 + 1',
        'audio': counts,
    })
    return len(good), len(bad), counts


def run_reference(args, out_name):
    out = os.path.join(OUT, out_name)
    cmd = [sys.executable, os.path.join(REPO, 'tools', 'pack_reference.py'), '--tokenizer', TOKENIZER,
           '--out', out] + args
    res = subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True)
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    for k in ('tokenizer_load_s', 'pack_s'):  # timings: not part of the fixture
        del summary[k]
    with open(os.path.join(out, 'rejects.jsonl'), encoding='utf-8') as f:
        rejects = [json.loads(line) for line in f]
    os.remove(os.path.join(out, 'rejects.jsonl'))  # kept in expected_rejects.json instead
    return summary, rejects


def same_dirs(a, b):
    names = sorted(os.listdir(a))
    if names != sorted(os.listdir(b)):
        return False
    return all(open(os.path.join(a, n), 'rb').read() == open(os.path.join(b, n), 'rb').read() for n in names)


def gen_mds():
    runs = {
        'cooking_4096': ['--block-size', '4096', 'tests/fixtures/pack/rows.jsonl'],
        'cooking_512': ['--block-size', '512', 'tests/fixtures/pack/rows.jsonl'],
        'standard_4096_greedy_all': ['--standard', '--block-size', '4096', 'tests/fixtures/pack/rows.jsonl'],
        'standard_512_bfd_assistant': ['--standard', '--strategy', 'bfd', '--train-on', 'assistant',
                                       '--block-size', '512', 'tests/fixtures/pack/rows.jsonl'],
    }
    summaries, rejects = {}, {}
    for name, args in runs.items():
        summaries[name], rej = run_reference(args, name)
        rejects[name] = [{k: r[k] for k in ('file', 'line', 'kind', 'reason')} for r in rej]
    # The JSON-array form of the good rows must give the very same bytes.
    with tempfile.TemporaryDirectory() as tmp:
        for name in ('cooking_4096', 'cooking_512'):
            bs = name.split('_')[1]
            cmd = [sys.executable, os.path.join(REPO, 'tools', 'pack_reference.py'), '--tokenizer', TOKENIZER,
                   '--block-size', bs, '--out', os.path.join(tmp, name), 'tests/fixtures/pack/rows.json']
            subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
            os.remove(os.path.join(tmp, name, 'rejects.jsonl'))
            assert same_dirs(os.path.join(tmp, name), os.path.join(OUT, name)), name
    write_json('expected_rejects.json', {
        'generator': 'tools/gen_pack_fixtures.py (pack_reference.py on rows.jsonl)',
        'kinds': 'malformed_json | audio_missing | audio_undecodable | placeholder_mismatch | too_long | '
                 'invalid_row; reasons are the reference\'s wording (audiotok words them its own way)',
        'summaries': summaries,
        'rejects': rejects,
    })
    return summaries


def check_tokenizer_only():
    """Run under transformers 5.x (.venv): recompute the committed ids with that version."""
    import transformers

    tok = ref.load_tokenizer(TOKENIZER)
    with open(os.path.join(OUT, 'tokenizer_ids.json'), encoding='utf-8') as f:
        want = json.load(f)
    bad = 0
    for s in want['strings']:
        if ref.encode(tok, s['text']) != s['ids']:
            print('MISMATCH', repr(s['text'][:60]))
            bad += 1
    for p in want['processor']:
        if ref.encode(tok, ref.expand_audio(p['text'], p['audio_tokens'])) != p['ids']:
            print('MISMATCH processor', repr(p['text'][:60]))
            bad += 1
    n = len(want['strings']) + len(want['processor'])
    print(f'transformers {transformers.__version__}: {n - bad}/{n} id lists equal')
    sys.exit(1 if bad else 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--check-tokenizer', action='store_true', help='only compare tokenizer_ids.json (any venv)')
    a = ap.parse_args()
    os.chdir(REPO)
    if a.check_tokenizer:
        check_tokenizer_only()
    versions = check_versions()
    tok = ref.load_tokenizer(TOKENIZER)
    ns, npr = gen_tokenizer_ids(tok, versions)
    nchat = gen_chat_templates(tok)
    ngood, nbad, counts = gen_rows()
    for name in ('cooking_4096', 'cooking_512', 'standard_4096_greedy_all', 'standard_512_bfd_assistant'):
        if os.path.exists(os.path.join(OUT, name)):
            shutil.rmtree(os.path.join(OUT, name))
    summaries = gen_mds()
    print(f'tokenizer_ids.json: {ns} strings, {npr} processor cases')
    print(f'chat_template.jsonl: {nchat} renderings')
    print(f'rows: {ngood} good rows, {nbad} bad lines; {len(counts)} audio files')
    for name, s in summaries.items():
        print(f'{name}: {s["documents"]} documents, {s["rejected"]} rejected, {s["blocks"]} blocks, '
              f'{s["tokens"]} tokens, efficiency {s["efficiency"]:.3f}')


if __name__ == '__main__':
    main()
