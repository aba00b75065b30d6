"""Write the CP-Mobile network and schedule fixtures (tests/data/reference/cpmobile_*.npz) from the PyTorch references.

Needs the optional ``reference`` extra (torch, torchaudio, soundfile) and ../shared/data/real beside the
repository (real TAU clips). Reproducible: the same versions write byte-identical files (seeded
weights, float64 reference, zip entries with a fixed date)::

    python tools/reference/cpmobile_fixtures.py            # writes tests/data/reference/cpmobile_network.npz, cpmobile_schedule.npz

Network fixture: ``inputs`` (4, 256, 65) float32 log-mels of four real TAU clips' first second (torchaudio:
resample to 32 kHz, MelSpectrogram n_fft 4096, window 3072, hop 500, 256 HTK bands 0-16 kHz, power 2,
then log(x + 1e-5)); ``weight/<name>`` the seeded random state dict (float32, BN running statistics
randomised too; names as tools/reference/network.py); ``logits`` (4, 10) float64, the reference network
run in float64 on those float32 values; ``clips``, ``notice`` (the TAU licence), ``versions``.
Schedule fixture: per case ``<case>/learning_rates`` read from torch's LambdaLR, and the case's settings.
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools" / "reference"))

from network import CPMobile, randomise  # noqa: E402
from schedule import learning_rates  # noqa: E402

AUDIO = REPO.parent / "shared" / "data" / "real" / "audio"
CLIPS = (  # real TAU recordings (PROVENANCE.md in ../shared/data/real), the first second of each
    "tau2022_soundata_fixture/airport-lisbon-1000-40000-0-a.wav",
    "tau2020_soundata_fixture_trimmed/airport-barcelona-0-0-a.wav",
    "tau2019_awarenessxz_static/park.wav",
    "tau2019_awarenessxz_static/street_traffic.wav",
)
SEED = 23
OUTPUT = REPO / "tests" / "data" / "reference"
NOTICE = (
    "The inputs are log-mel spectrograms of TAU Urban Acoustic Scenes recordings (2019, 2020 Mobile, 2022 Mobile "
    "development). Copyright (c) 2019-2022 Tampere University and its licensors. All rights reserved. Free for "
    "experimental and non-commercial purposes only, provided this copyright notice in its entirety appears in all "
    "copies and the original source (Audio Research Group at Tampere University of Technology) is acknowledged in "
    "any publication reporting research using this Work. Any commercial use is strictly prohibited. "
    "Full notice: ../shared/data/real/PROVENANCE.md, section 0."
)
SCHEDULE_CASES = {  # name: (learning rate, warm-up steps, total steps, steps recorded)
    "recipe": (0.005, 2000, 6000, 6100),  # the recipe's rate and warm-up; 100 steps past the end (the formula rises again there)
    "short": (0.001, 10, 50, 60),
    "no_warmup": (0.01, 0, 30, 31),
}


def log_mel(path: Path) -> np.ndarray:
    """(256, 65) float32 log-mel of the first second of a clip (channels averaged), torchaudio's front end."""
    audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
    waveform = torch.from_numpy(audio[:rate].mean(axis=1))[None]
    waveform = torchaudio.functional.resample(waveform, rate, 32000)
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=32000, n_fft=4096, win_length=3072, hop_length=500, f_min=0.0,
                                               f_max=16000.0, n_mels=256, power=2.0, center=True, pad_mode="reflect",
                                               norm=None, mel_scale="htk")(waveform)
    return torch.log(mel + 1e-5)[0].numpy().astype(np.float32)


def write_npz(path: Path, arrays: dict) -> None:
    """An .npz numpy reads, byte-identical for identical arrays (entries in key order, fixed date)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            data = io.BytesIO()
            np.lib.format.write_array(data, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data.getvalue())
    path.write_bytes(buffer.getvalue())


def versions() -> str:
    return f"torch {torch.__version__}, torchaudio {torchaudio.__version__}, numpy {np.__version__}, soundfile {soundfile.__version__}"


def network_fixture() -> dict:
    torch.manual_seed(SEED)
    model = CPMobile(classes=10)
    randomise(model, torch.Generator().manual_seed(SEED))
    state = {name: value.detach().to(torch.float32) for name, value in model.state_dict().items() if not name.endswith("num_batches_tracked")}
    model = model.double()
    model.load_state_dict({name: value.double() for name, value in state.items()}, strict=False)
    model.eval()
    inputs = np.stack([log_mel(AUDIO / clip) for clip in CLIPS])
    with torch.no_grad():
        logits = model(torch.from_numpy(inputs.astype(np.float64))[:, None]).numpy()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"inputs": inputs, "logits": logits, "clips": np.array(CLIPS), "notice": np.array(NOTICE), "versions": np.array(versions()),
            "trainable_parameters": np.array(trainable), **{f"weight/{name}": value.numpy() for name, value in state.items()}}


def schedule_fixture() -> dict:
    arrays = {"versions": np.array(versions())}
    for case, (rate, warmup, total, steps) in SCHEDULE_CASES.items():
        arrays[f"{case}/settings"] = np.array([rate, warmup, total], dtype=np.float64)
        arrays[f"{case}/learning_rates"] = np.array(learning_rates(rate, warmup, total, steps), dtype=np.float64)
    return arrays


def main() -> None:
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    write_npz(OUTPUT / "cpmobile_network.npz", network_fixture())
    write_npz(OUTPUT / "cpmobile_schedule.npz", schedule_fixture())
    for name in ("cpmobile_network.npz", "cpmobile_schedule.npz"):
        print(f"{OUTPUT / name}: {(OUTPUT / name).stat().st_size:,} B")


if __name__ == "__main__":
    main()
