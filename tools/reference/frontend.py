"""The torchaudio reference of the DCASE2024/2025 baseline front end, written into a committed fixture.

Computes what the CPJKU baseline computes on the fly (issue 23, "Front end"):
``torchaudio.transforms.Resample(44100, 32000)`` with its defaults (sinc_interp_hann, lowpass
filter width 6, rolloff 0.99), ``torchaudio.transforms.MelSpectrogram(sample_rate=32000,
n_fft=4096, win_length=3072, hop_length=500, n_mels=256, f_min=0, f_max=None)`` (its defaults:
periodic Hann window, centred with reflect padding, power 2, HTK mel, no norm), then
``log(mel + 1e-5)``, on real TAU recordings (../shared/data/real/audio) and synthetic signals, twice:
in float32, as the baseline runs it, and in float64 (``torch.set_default_dtype(torch.float64)``,
``Resample(dtype=torch.float64)``: the same code without float32 rounding). Both mel filterbanks
are stored too (their non-zero entries).

Needs the ``reference`` extra (torch, torchaudio) and soundfile; never imported by the project::

    pip install -e .[reference]
    python tools/reference/frontend.py            # writes tests/data/reference/frontend_32k.npz
    python tools/reference/frontend.py --check    # recomputes and compares with the committed file

The fixture is written byte for byte reproducibly (fixed zip timestamps, one torch thread), so a
rerun with the versions recorded in it (``versions``) gives the same file; ``--check`` says which
array differs if not. docs/reference_fixtures.md ("Front end") describes it.
"""

from __future__ import annotations

import argparse
import io
import platform
import sys
import zipfile
from pathlib import Path

import numpy as np

REPO_DIR = Path(__file__).resolve().parents[2]
AUDIO_DIR = REPO_DIR.parent / "shared" / "data" / "real" / "audio"
FIXTURE = REPO_DIR / "tests" / "data" / "reference" / "frontend_32k.npz"

FS = 44100
FACTS = {"resample_fs": 32000, "n_fft": 4096, "win_length": 3072, "hop_length": 500, "n_mels": 256, "fmin": 0.0, "fmax": 16000.0, "log_offset": 1e-5}

#: real TAU clips (44.1 kHz mono, the 2022 Mobile format): name -> (file under AUDIO_DIR, first second, seconds)
REAL_CLIPS = {
    "real_tau2022_airport_lisbon": ("tau2022_soundata_fixture/airport-lisbon-1000-40000-0-a.wav", 0.0, 1.0),
    "real_tau2020_metro_station_paris": ("tau2020_efficientat_resources/metro_station-paris.wav", 4.0, 0.5),
}
#: synthetic signals: 0.2 s each (8,820 samples -> 6,400 at 32 kHz -> 13 frames)
SYNTHETIC_SAMPLES = 8820


def synthetic_signals() -> dict:
    """Name -> float32 signal at 44.1 kHz: a tone, a chirp across the new Nyquist, noise, clicks, silence."""
    t = np.arange(SYNTHETIC_SAMPLES) / FS
    clicks = np.zeros(SYNTHETIC_SAMPLES)
    clicks[::1000] = 0.9
    return {
        "synthetic_tone_1khz": 0.5 * np.sin(2 * np.pi * 1000.0 * t),
        # 20 Hz -> 22 kHz linear sweep: crosses 16 kHz, where the resampler's low-pass cuts
        "synthetic_chirp": 0.3 * np.sin(2 * np.pi * (20.0 * t + (22000.0 - 20.0) / (2 * t[-1]) * t**2)),
        "synthetic_noise": 0.1 * np.random.default_rng(23).standard_normal(SYNTHETIC_SAMPLES),
        "synthetic_clicks": clicks,
        "synthetic_silence": np.zeros(SYNTHETIC_SAMPLES),
    }


def real_clips() -> dict:
    import soundfile

    clips = {}
    for name, (relative, start, seconds) in REAL_CLIPS.items():
        path = AUDIO_DIR / relative
        y, fs = soundfile.read(path, dtype="float64", always_2d=True)
        if fs != FS or y.shape[1] != 1:
            sys.exit(f"error: {path} is {fs} Hz, {y.shape[1]} channel(s); expected {FS} Hz mono")
        first = int(round(start * FS))
        clips[name] = y[first : first + int(round(seconds * FS)), 0]
    return clips


def reference(signal: np.ndarray, dtype) -> np.ndarray:
    """torchaudio's resample + mel + log(x + 1e-5) of ``signal`` in ``dtype`` (torch default dtype set to it)."""
    import torch
    import torchaudio

    torch.set_default_dtype(dtype)
    resample = torchaudio.transforms.Resample(FS, FACTS["resample_fs"], dtype=dtype)
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=FACTS["resample_fs"], n_fft=FACTS["n_fft"], win_length=FACTS["win_length"],
                                               hop_length=FACTS["hop_length"], n_mels=FACTS["n_mels"], f_min=FACTS["fmin"], f_max=None)
    with torch.no_grad():
        x = torch.from_numpy(np.asarray(signal)).to(dtype)
        out = (mel(resample(x)) + FACTS["log_offset"]).log().numpy()
    return out, mel.mel_scale.fb.numpy().T  # (n_mels, n_frames), filterbank (n_mels, n_bins)


def compute() -> dict:
    """Every array of the fixture, by name."""
    import soundfile
    import torch
    import torchaudio

    torch.set_num_threads(1)
    signals = {**real_clips(), **synthetic_signals()}
    arrays = {"names": np.array(list(signals)), "fs": np.int64(FS)}
    arrays.update({f"fact_{k}": np.asarray(v) for k, v in FACTS.items()})
    for name, signal in signals.items():
        arrays[f"input/{name}"] = signal.astype(np.float32)  # exact for the 24-bit clips
        for label, dtype in (("float32", torch.float32), ("float64", torch.float64)):
            # both from the float32 input, as the baseline sees it; stored as float32 (log values up to ~12: 1e-6 steps)
            out, filterbank = reference(signal.astype(np.float32), dtype)
            arrays[f"reference_{label}/{name}"] = out.astype(np.float32)
    for label, dtype in (("float32", torch.float32), ("float64", torch.float64)):
        _, filterbank = reference(np.zeros(FS, dtype=np.float32), dtype)
        rows, cols = np.nonzero(filterbank)
        arrays[f"filterbank_{label}/shape"] = np.asarray(filterbank.shape, dtype=np.int64)
        arrays[f"filterbank_{label}/rows"] = rows.astype(np.int16)
        arrays[f"filterbank_{label}/cols"] = cols.astype(np.int16)
        arrays[f"filterbank_{label}/values"] = filterbank[rows, cols]
    torch.set_default_dtype(torch.float32)
    versions = {"python": platform.python_version(), "numpy": np.__version__, "soundfile": soundfile.__version__,
                "torch": torch.__version__, "torchaudio": torchaudio.__version__}
    arrays["versions"] = np.array([f"{k}={v}" for k, v in versions.items()])
    return arrays


def write_npz(path: Path, arrays: dict) -> None:
    """``numpy.savez_compressed``'s format with a fixed timestamp per member, so equal arrays give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, member.getvalue())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def check(path: Path, arrays: dict) -> int:
    """0 when the committed fixture holds exactly ``arrays``; else 1, naming what differs."""
    committed = np.load(path, allow_pickle=False)
    differing = sorted(set(committed.files) ^ set(arrays))
    differing += [k for k in arrays if k in committed.files and not np.array_equal(committed[k], arrays[k])]
    if differing:
        print(f"{path} differs from a fresh computation in: {', '.join(differing)}")
        print(f"committed with: {', '.join(committed['versions'])}")
        return 1
    print(f"{path}: reproduced exactly ({len(arrays)} arrays)")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=FIXTURE, help=f"the fixture to write (default {FIXTURE.relative_to(REPO_DIR)})")
    parser.add_argument("--check", action="store_true", help="compare a fresh computation with the fixture instead of writing it")
    args = parser.parse_args(argv)
    arrays = compute()
    if args.check:
        return check(args.output, arrays)
    write_npz(args.output, arrays)
    print(f"{args.output}: {len(arrays)} arrays, {args.output.stat().st_size / 1024:.0f} kB; {', '.join(arrays['versions'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
