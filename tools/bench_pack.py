#!/usr/bin/env python3
"""Benchmark: `audiotok pack --compat cooking` vs the Python notebook loop (tools/pack_reference.py) on
the same rows, in the same run.

    cargo build --release -p audiotok-cli
    tools/fetch_qwen_tokenizer.sh
    tmp/venv-pack/bin/python tools/bench_pack.py [--rows 2000] [--clips 200] [--audiotok target/release/audiotok]

1. Makes (once; deterministic, reused when present) bench-data/pack/: --clips clips of 1-30 s synthesised
   with espeak-ng (fixed voices/texts), cut/padded with sox (-R, no dither) and written as WAV (16 kHz
   mono PCM16, 22.05 kHz mono, 44.1 kHz stereo), FLAC (16 kHz mono, 44.1 kHz stereo) and MP3 (libmp3lame
   64 kb/s, -bitexact); then rows.jsonl with --rows rows (seeded random.Random(0)): ChatML text rows with
   one or two <|AUDIO|> placeholders (some pre-wrapped) and a few `messages` rows, clips drawn with
   repetition, like an instruction dataset that reuses its audio.
2. Runs, one after the other on the same rows.jsonl, block size 4096, greedy, cooking layout:
     python   taskset -c 0, OMP/MKL/OPENBLAS/NUMBA threads = 1:
              tools/pack_reference.py (librosa.load(sr=16000) for every audio of every row, like the
              notebook, no length cache; transformers tokenizer; MDSWriter)
     audiotok --jobs 1 under taskset -c 0, and --jobs 2 under taskset -c 0,1
   Each command's wall time includes process start, imports and tokenizer loading; the reference's own
   summary also reports its loop time alone (pack_s), shown as "python loop".
3. Checks that every output has the same blocks: all files byte-identical, and every sample decoded
   with streaming's LocalDataset (uint32 registered) equal column by column.
Prints rows/s and the ratios; record them in BENCHMARKS.md with `uptime` (the machine is shared).
"""

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..'))
DATA = os.path.join(REPO, 'bench-data', 'pack')
TOKENIZER = os.path.join(REPO, 'tests', 'fixtures', 'pack', 'qwen2-tokenizer')

SENTENCES = [
    'The quick brown fox jumps over the lazy dog.',
    'Please describe the weather in Kuala Lumpur this afternoon.',
    'Audio language models turn speech into tokens that a transformer can read.',
    'She sells sea shells by the sea shore, and the shells she sells are surely sea shells.',
    'Numbers like three hundred and forty two are read out one word at a time.',
    'A packed block holds several documents separated by their own position ids.',
    'The meeting moved to Thursday at half past nine in the morning.',
    'Every clip in this benchmark is synthetic, made with a speech synthesiser.',
]
VOICES = ['en-us', 'en-gb', 'en-gb-x-rp', 'ms', 'en-us+f3', 'en-gb+m3']
KINDS = ['wav16', 'wav22', 'wav44s', 'flac16', 'flac44s', 'mp3']
THREAD_ENV = {k: '1' for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'NUMBA_NUM_THREADS',
                               'NUMEXPR_NUM_THREADS', 'RAYON_NUM_THREADS')}


def sh(cmd, **kw):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)


def make_clips(n):
    clips = os.path.join(DATA, 'clips')
    os.makedirs(clips, exist_ok=True)
    base = os.path.join(DATA, 'base')
    os.makedirs(base, exist_ok=True)
    # one long 16 kHz mono source per voice: all sentences, read in turn
    sources = []
    for v, voice in enumerate(VOICES):
        src = os.path.join(base, f'src_{v}.wav')
        if not os.path.exists(src):
            raw = os.path.join(base, f'raw_{v}.wav')
            text = ' '.join(SENTENCES[v:] + SENTENCES[:v]) * 2
            sh(['espeak-ng', '-v', voice, '-s', '165', '-w', raw, text])
            sh(['sox', '-R', '-D', raw, '-r', '16000', '-c', '1', '-b', '16', src + '.tmp.wav'])
            os.replace(src + '.tmp.wav', src)
            os.remove(raw)
        sources.append(src)
    names = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        dur = 1.0 + ((i * 7919) % 291) / 10.0  # 1.0 .. 30.0 s
        ext = {'wav': 'wav', 'fla': 'flac', 'mp3': 'mp3'}[kind[:3]]
        name = os.path.join('bench-data', 'pack', 'clips', f'clip_{i:04d}.{ext}')
        names.append(name)
        path = os.path.join(REPO, name)
        if os.path.exists(path):
            continue
        src = sources[i % len(sources)]
        start = ((i * 131) % 50) / 10.0
        tmp = path + '.tmp.wav'
        # take `dur` seconds from `start`, padding with silence when the source runs out
        effects = ['trim', f'{start}', 'pad', '0', '30', 'trim', '0', f'{dur}']
        if kind == 'wav22':
            fmt = ['-r', '22050', '-c', '1', '-b', '16']
        elif kind in ('wav44s', 'flac44s'):
            fmt = ['-r', '44100', '-c', '2', '-b', '16']
        else:
            fmt = ['-r', '16000', '-c', '1', '-b', '16']
        sh(['sox', '-R', '-D', src] + fmt + [tmp] + effects)
        if ext == 'wav':
            os.replace(tmp, path)
        elif ext == 'flac':
            sh(['flac', '--silent', '--force', '-5', '--no-seektable', '-o', path + '.part.flac', tmp])
            os.replace(path + '.part.flac', path)
            os.remove(tmp)
        else:
            sh(['ffmpeg', '-nostdin', '-y', '-loglevel', 'error', '-i', tmp, '-c:a', 'libmp3lame', '-b:a', '64k',
                '-bitexact', '-map_metadata', '-1', '-f', 'mp3', path + '.part'])
            os.replace(path + '.part', path)
            os.remove(tmp)
    return names


def make_rows(clips, n_rows):
    rng = random.Random(0)
    rows = []
    questions = ['What is said in this audio?', 'Transcribe the recording.', 'Apa yang dikatakan?',
                 'Summarise the speaker.', '这段音频说了什么？', 'How long is the clip?']
    answers = ['The speaker talks about the weather.', 'It is a short synthetic sentence.',
               'Penutur bercakap tentang mesyuarat.', 'Several sentences read by a synthesiser. 😀',
               'About ten seconds of speech.']
    for i in range(n_rows):
        k = 2 if rng.random() < 0.15 else 1
        audio = [rng.choice(clips) for _ in range(k)]
        q, ans = rng.choice(questions), rng.choice(answers)
        if rng.random() < 0.1:
            content = [{'type': 'audio', 'audio_url': p} for p in audio] + [{'type': 'text', 'text': q}]
            rows.append({'messages': [{'role': 'user', 'content': content}, {'role': 'assistant', 'content': ans}],
                         'audio': audio})
            continue
        ph = ' '.join('<|audio_bos|><|AUDIO|><|audio_eos|>' if rng.random() < 0.3 else '<|AUDIO|>' for _ in audio)
        system = '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' if rng.random() < 0.5 else ''
        text = f'{system}<|im_start|>user\n{ph}\n{q}<|im_end|>\n<|im_start|>assistant\n{ans} (#{i})<|im_end|>\n'
        rows.append({'text': text, 'audio': audio if k > 1 or rng.random() < 0.5 else audio[0]})
    path = os.path.join(DATA, f'rows_{n_rows}.jsonl')
    with open(path, 'w', encoding='utf-8') as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + '\n')
    return os.path.relpath(path, REPO)


def timed(cmd, env=None):
    t = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(f'{" ".join(cmd)} failed:\n{res.stderr[-2000:]}')
    return wall, res.stdout


def decoded(out):
    from streaming import LocalDataset

    import qwen2_audio_ref

    qwen2_audio_ref.register_uint32()
    ds = LocalDataset(local=out)
    return [{k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in ds[i].items()} for i in range(len(ds))]


def files(out):
    return {n: open(os.path.join(out, n), 'rb').read() for n in sorted(os.listdir(out)) if n != 'rejects.jsonl'}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--rows', type=int, default=2000)
    ap.add_argument('--clips', type=int, default=200)
    ap.add_argument('--block-size', type=int, default=4096)
    ap.add_argument('--audiotok', default=os.path.join(REPO, 'target', 'release', 'audiotok'))
    a = ap.parse_args()
    os.chdir(REPO)
    audiotok = os.path.abspath(a.audiotok)
    t = time.perf_counter()
    clips = make_clips(a.clips)
    rows = make_rows(clips, a.rows)
    print(f'data: {len(clips)} clips, {a.rows} rows in {rows} ({time.perf_counter() - t:.1f} s to prepare)')
    load = os.getloadavg()
    print(f'load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores')

    env = dict(os.environ, **THREAD_ENV)
    outs = {name: os.path.join(DATA, f'out_{name}') for name in ('python', 'jobs1', 'jobs2')}
    for d in outs.values():
        if os.path.exists(d):
            shutil.rmtree(d)
    bs = str(a.block_size)
    py_wall, py_out = timed(['taskset', '-c', '0', sys.executable, 'tools/pack_reference.py', '--tokenizer', TOKENIZER,
                             '--block-size', bs, '--out', outs['python'], rows], env)
    py = json.loads(py_out.strip().splitlines()[-1])
    results = {}
    for name, cpus, jobs in (('jobs1', '0', '1'), ('jobs2', '0,1', '2')):
        wall, out = timed(['taskset', '-c', cpus, audiotok, 'pack', '--profile', 'qwen2-audio', '--tokenizer',
                           TOKENIZER, '--block-size', bs, '--strategy', 'greedy', '--compat', 'cooking', '--jobs',
                           jobs, '--json', '--out', outs[name], rows])
        results[name] = (wall, json.loads(out))

    n = a.rows
    print(f'\n{"":24}{"wall s":>9}{"rows/s":>10}{"vs python":>11}')
    print(f'{"python (1 core)":24}{py_wall:9.2f}{n / py_wall:10.1f}{1.0:11.1f}')
    print(f'{"python loop only":24}{py["pack_s"]:9.2f}{n / py["pack_s"]:10.1f}{py_wall / py["pack_s"]:11.2f}')
    for name, label in (('jobs1', 'audiotok --jobs 1'), ('jobs2', 'audiotok --jobs 2')):
        wall = results[name][0]
        print(f'{label:24}{wall:9.2f}{n / wall:10.1f}{py_wall / wall:11.1f}')
    s1 = results['jobs1'][1]
    print(f'\naudiotok --jobs 1 vs python loop only: {py["pack_s"] / results["jobs1"][0]:.1f}x; '
          f'--jobs 2 vs --jobs 1: {results["jobs1"][0] / results["jobs2"][0]:.2f}x')
    print(f'blocks {py["blocks"]}, documents {py["documents"]}, rejected {py["rejected"]}; audiotok: '
          f'{s1.get("blocks")} blocks, lengths from headers {s1.get("audio_lengths_from_header")}, '
          f'decoded {s1.get("audio_files_decoded")}')
    load = os.getloadavg()
    print(f'load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}')

    ref_files, ref_samples = files(outs['python']), decoded(outs['python'])
    ok = True
    for name in ('jobs1', 'jobs2'):
        same_bytes = files(outs[name]) == ref_files
        got = decoded(outs[name])
        same_samples = got == ref_samples
        print(f'{name}: files byte-identical to python: {same_bytes}; {len(got)} decoded samples equal: '
              f'{same_samples}')
        ok = ok and same_bytes and same_samples
    print('PASS: same blocks' if ok else 'FAIL: outputs differ')
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
