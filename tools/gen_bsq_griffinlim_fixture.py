"""Reference for audiotok-bsq's Griffin-Lim (crates/audiotok-bsq/src/griffinlim.rs).

    /work/main/.venv-torch/bin/python tools/gen_bsq_griffinlim_fixture.py

Writes tests/fixtures/griffinlim/ (float32 .npy, about 60 kB):
  mel_db.npy  [128, 31] librosa mel-db (n_fft 1024, hop 160, 128 mels, ref=np.max, top_db=80) of the
              first 0.3 s of tests/fixtures/audio/speech_1s.wav
  mag.npy     [513, 31] sqrt(max(pinv(mel_basis) @ 10**(mel_db/10), 0)), float64 then stored float32
  audio.npy   [4800]    librosa.griffinlim(mag (float64), n_iter=8, hop_length=160, n_fft=1024,
              momentum=0.99, init=None)
Versions: tools/requirements-bsq.txt (librosa 0.11.0, numpy 2.1.3, scipy 1.17.1, soundfile).
"""
import pathlib

import librosa
import numpy as np
import soundfile as sf

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "tests/fixtures/griffinlim"
OUT.mkdir(parents=True, exist_ok=True)

y, sr = sf.read(ROOT / "tests/fixtures/audio/speech_1s.wav", dtype="float32")
assert sr == 16000
y = y[:4800]
mel = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=1024, hop_length=160, n_mels=128)
db = librosa.power_to_db(mel, ref=np.max, top_db=80.0).astype(np.float32)
basis = librosa.filters.mel(sr=16000, n_fft=1024, n_mels=128).astype(np.float64)
power = 10.0 ** (db.astype(np.float64) / 10.0)
mag = np.sqrt(np.maximum(np.linalg.pinv(basis) @ power, 0.0))
audio = librosa.griffinlim(mag, n_iter=8, hop_length=160, n_fft=1024, momentum=0.99, init=None)
np.save(OUT / "mel_db.npy", db)
np.save(OUT / "mag.npy", mag.astype(np.float32))
np.save(OUT / "audio.npy", audio.astype(np.float32))
print(db.shape, mag.shape, audio.shape, float(np.abs(audio).max()))
