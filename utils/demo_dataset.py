"""The built-in synthetic demo dataset (NOT TAU audio), in the exact TAU Urban Acoustic Scenes 2022 Mobile layout.

Owns the acoustic model of the ten scenes and of the recording devices, the recording plan
(cities, locations, segments, folds, devices) and the writer of the two dataset folders::

    <root>/development/   meta.csv, evaluation_setup/fold1_{train,evaluate,test}.csv,
                          split_setup/split{5,10,25,50}.csv (DCASE2024-style training subsets),
                          audio/[scene]-[city]-[location id]-[segment id]-[sub-segment]-[device].wav
    <root>/evaluation/    meta.csv (filename only), evaluation_setup/fold1_test.csv, audio/0.wav ...
    <root>/evaluation_labels.csv   filename, scene_label, identifier, source_label of the evaluation set

so that the whole pipeline runs out of the box and tests have realistic data. Audio is 1-s clips,
44.1 kHz, 24-bit, mono; CSV files are tab separated with CRLF line endings like the official ones.

The acoustic model: every 10-s segment of a scene is a mix of coloured background noise with slow
level modulation, tonal hums (engines, motors, ventilation), distant babble and discrete events
(speech, footsteps, birds, cars, trains, rail clacks, brake squeals, chimes, music, suitcases), with
reverberation; every location (and, less, every city and segment) draws its own variant of its
scene's parameters, so locations held out for testing are genuinely new. Every device is a
frequency response, a self-noise floor and a dynamic range compressor applied to the SAME recording,
so device mismatch is real; devices s4-s6 (development test) and d, s7-s11 (evaluation) are unseen in
training and their responses are further from the training devices'.

Generation is deterministic for a seed (byte-identical files), runs once (a ``.complete`` marker
holding the parameters' hash is written last) and is atomic (built in a temporary sibling folder
and renamed into place, so a killed generation never looks complete).

Module CLI::

    python -m utils.demo_dataset PATH [--seed N]
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import scipy.fft
import scipy.signal
import soundfile

from utils import cli
from utils.dataset import DEVELOPMENT_DEVICES, DEVICE_GROUPS, EVALUATION_DEVICES, SCENE_LABELS, SPLIT_FOLDER, TRAIN_SPLITS, split_filename
from utils.errors import Task1aError, run_cli
from utils.files import write_json_atomic, write_text_atomic
from utils.settings import DEMO_KEY, DemoSettings, demo_from_block, worker_count

# Bump when the acoustic model or the layout changes: it is part of the parameters' hash, so an
# existing dataset made by an older generator is regenerated.
# 2: development/split_setup/split{5,10,25,50}.csv added (the audio is unchanged).
# 3: evaluation/evaluation_setup/fold1_test.csv in the official DCASE2025 form: filename, device_id (the audio is unchanged).
GENERATOR_VERSION = 3

DEVELOPMENT_FOLDER = "development"
EVALUATION_FOLDER = "evaluation"
EVALUATION_LABELS_FILE = "evaluation_labels.csv"
COMPLETE_MARKER = ".complete"
README_FILE = "README.txt"

TRAIN_DEVICES = tuple(device for device in DEVELOPMENT_DEVICES if device not in DEVICE_GROUPS["unseen_simulated"])
REFERENCE_DEVICE = "a"  # records every segment, like the Soundman binaural microphone of the real data
CLIP_SECONDS = 1
PCM_SUBTYPE = "PCM_24"
FULL_SCALE = 1.0 - 2.0**-23  # largest PCM_24 value


# ----------------------------------------------------------------------------------------------
# Acoustic model: scenes
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class EventModel:
    """A kind of sound event: Poisson ``rate`` per second at ``level_db`` relative to the background RMS."""

    kind: str
    rate: float
    level_db: float


@dataclasses.dataclass(frozen=True)
class SceneModel:
    """The acoustic parameters of one scene (or of one location's, city's or segment's variant of it).

    Levels are dB: ``level_db`` the background RMS in dBFS, the other levels relative to it.
    """

    level_db: float
    noise_slope_db_per_octave: float  # background colour: 0 white, -3 pink, -6 brown
    noise_lowpass_hz: float
    modulation_rate_hz: float  # slow level modulation of the background (traffic swells, wind, acceleration)
    modulation_depth: float  # standard deviation of the natural-log gain
    hum_hz: float  # tonal hum fundamental (engine, motor, ventilation); 0 for none
    hum_harmonics: int
    hum_level_db: float
    hum_drift: float  # relative standard deviation of the hum frequency over time
    babble_level_db: float | None  # distant crowd; None for none
    events: tuple[EventModel, ...]
    reverb_seconds: float  # RT60; 0 for none
    reverb_wet: float  # gain of the reverberant part
    eq_bumps: tuple[tuple[float, float, float], ...] = ()  # location colouration: (centre Hz, gain dB, width octaves)


def _events(**kinds) -> tuple[EventModel, ...]:
    return tuple(EventModel(kind, rate, level) for kind, (rate, level) in kinds.items())


# The ten scenes, loosely after what one hears in the TAU recordings (levels -35..-55 dBFS, energy
# mostly below 1 kHz). Vehicles share engine hums and rail sounds, indoor public spaces share babble,
# footsteps and long reverberation, outdoor scenes share traffic and birds: the classes overlap the
# way the real ones do, and the location variation (parameter ``location_variation``) sets how much.
SCENE_MODELS: dict[str, SceneModel] = {
    "airport": SceneModel(-46, -2.0, 8000, 0.3, 0.15, 0, 1, -60, 0.0, -6,
                          _events(speech=(0.3, 2), footstep=(1.2, -4), suitcase=(0.3, -2), chime=(0.08, 6)), 1.3, 0.5),
    "bus": SceneModel(-42, -6.0, 1500, 0.5, 0.35, 45, 8, -2, 0.08, -16, _events(speech=(0.1, 0), squeal=(0.02, 0), clack=(0.1, -4)), 0.15, 0.3),
    "metro": SceneModel(-38, -4.0, 3000, 0.4, 0.3, 120, 10, -2, 0.15, -20, _events(clack=(0.8, 5), squeal=(0.1, 2), speech=(0.05, -2)), 0.3, 0.3),
    "metro_station": SceneModel(-43, -4.5, 5000, 0.2, 0.2, 50, 4, -12, 0.0, -6,
                                _events(speech=(0.2, 2), footstep=(0.8, -3), chime=(0.08, 6), train=(0.12, 6)), 1.8, 0.6),
    "park": SceneModel(-52, -5.0, 1000, 0.2, 0.5, 0, 1, -60, 0.0, None, _events(bird=(0.6, 12), speech=(0.05, -2), footstep=(0.2, -6)), 0.0, 0.0),
    "public_square": SceneModel(-45, -4.0, 2500, 0.3, 0.3, 0, 1, -60, 0.0, -8,
                                _events(speech=(0.2, 3), footstep=(0.6, -3), bird=(0.1, 5), car=(0.05, 0)), 0.4, 0.2),
    "shopping_mall": SceneModel(-45, -3.0, 5000, 0.2, 0.15, 100, 3, -10, 0.0, -4,
                                _events(speech=(0.4, 2), footstep=(1.0, -4), music=(0.3, 0), suitcase=(0.05, -4)), 1.0, 0.5),
    "street_pedestrian": SceneModel(-48, -4.0, 3000, 0.3, 0.3, 0, 1, -60, 0.0, -10,
                                    _events(footstep=(2.0, 0), speech=(0.3, 2), car=(0.08, 2), bird=(0.05, 3)), 0.3, 0.2),
    "street_traffic": SceneModel(-40, -5.0, 2000, 0.3, 0.5, 30, 4, -10, 0.05, None, _events(car=(0.6, 6), footstep=(0.1, -4)), 0.2, 0.1),
    "tram": SceneModel(-42, -5.0, 2500, 0.4, 0.3, 300, 6, -4, 0.2, -18,
                       _events(clack=(0.6, 4), squeal=(0.08, 4), chime=(0.02, 3), speech=(0.05, -2)), 0.2, 0.3),
}


# ----------------------------------------------------------------------------------------------
# Acoustic model: devices
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DeviceModel:
    """A recording device: frequency response, self-noise and dynamic range compression.

    Response in dB: 2nd-order high-pass at ``highpass_hz``, 4th-order low-pass at ``lowpass_hz``,
    ``tilt_db_per_octave`` around 1 kHz and resonances ``(centre Hz, gain dB, width octaves)``.
    The compressor acts above ``compression_threshold_db`` (dBFS, 5-ms RMS) with ``compression_ratio``
    (1 = none), smoothed over ``compression_seconds``, then ``gain_db`` of make-up gain.
    """

    highpass_hz: float
    lowpass_hz: float
    tilt_db_per_octave: float
    resonances: tuple[tuple[float, float, float], ...]
    noise_floor_db: float
    compression_threshold_db: float
    compression_ratio: float
    compression_seconds: float
    gain_db: float


# a: the reference (flat, quiet, uncompressed); b, c: phones; s1-s6: simulated devices; d (action
# camera) and s7-s11 exist only in the evaluation set. The unseen ones have stronger colouration.
DEVICE_MODELS: dict[str, DeviceModel] = {
    "a": DeviceModel(15, 20000, 0.0, (), -100, 0, 1.0, 0.05, 0),
    "b": DeviceModel(120, 12000, 0.5, ((2500, 4, 1.0),), -88, -50, 3.0, 0.05, 6),
    "c": DeviceModel(200, 15000, -0.5, ((900, -3, 1.5), (5000, 5, 0.7)), -85, -48, 4.0, 0.03, 8),
    "s1": DeviceModel(80, 10000, 1.0, ((1500, 6, 0.4),), -90, -45, 2.0, 0.1, 3),
    "s2": DeviceModel(300, 16000, 0.0, ((4000, -6, 1.2),), -88, -55, 3.0, 0.05, 5),
    "s3": DeviceModel(150, 8000, -1.0, ((700, 4, 0.6), (3000, 3, 0.3)), -82, -50, 5.0, 0.02, 6),
    "s4": DeviceModel(250, 9000, 0.5, ((2000, 4, 0.6),), -80, -55, 4.0, 0.02, 8),
    "s5": DeviceModel(60, 18000, -0.5, ((300, 3, 0.8), (6000, -3, 1.2)), -85, -55, 4.0, 0.08, 4),
    "s6": DeviceModel(250, 8000, 0.0, ((1200, -5, 1.0), (3500, 5, 0.4)), -82, -52, 5.0, 0.01, 10),
    "d": DeviceModel(300, 9000, 1.0, ((2800, 6, 0.8),), -78, -58, 6.0, 0.02, 10),
    "s7": DeviceModel(300, 12000, -0.5, ((800, 5, 1.0),), -80, -60, 5.0, 0.03, 8),
    "s8": DeviceModel(100, 7000, 0.5, ((1800, -5, 0.6), (4200, 5, 0.4)), -82, -55, 6.0, 0.01, 6),
    "s9": DeviceModel(200, 11000, 1.5, (), -78, -50, 3.0, 0.05, 6),
    "s10": DeviceModel(40, 14000, -1.0, ((250, 5, 0.6),), -85, -60, 6.0, 0.02, 6),
    "s11": DeviceModel(350, 16000, 0.5, ((1000, 4, 0.3), (2500, -4, 0.3), (6000, 5, 0.3)), -80, -55, 4.0, 0.04, 6),
}


# ----------------------------------------------------------------------------------------------
# Parameters
# ----------------------------------------------------------------------------------------------

def _as_mapping(settings: DemoSettings) -> dict:
    """The settings as the marker and the README write them (``cities`` a list)."""
    return {**dataclasses.asdict(settings), "cities": list(settings.cities)}


def parameters_hash(settings: DemoSettings) -> str:
    """SHA-256 (hex) of what determines the files: every parameter but ``path``, and the generator version."""
    content = {name: value for name, value in _as_mapping(settings).items() if name != "path"}
    content["generator_version"] = GENERATOR_VERSION
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode("utf-8")).hexdigest()


def dataset_paths(root: str | os.PathLike) -> dict:
    """Where :func:`generate_demo_dataset` puts the development set, the evaluation set and its labels."""
    root = Path(root)
    return {
        "development": root / DEVELOPMENT_FOLDER,
        "evaluation": root / EVALUATION_FOLDER,
        "evaluation_labels": root / EVALUATION_LABELS_FILE,
    }


# ----------------------------------------------------------------------------------------------
# Recording plan (pure: parameters -> what to synthesise and which files it gives)
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ClipOutput:
    """One file a recording job writes: sub-segment ``subsegment`` as recorded by ``device``."""

    subsegment: int
    device: str
    filename: str  # relative to its dataset folder, e.g. audio/bus-lisbon-12-345-0-a.wav or audio/7.wav


@dataclasses.dataclass(frozen=True)
class RecordingJob:
    """One segment to synthesise (``seconds`` long, from ``scene``'s variant ``model``) and the clips it gives."""

    folder: str  # DEVELOPMENT_FOLDER or EVALUATION_FOLDER
    scene: str
    identifier: str
    model: SceneModel
    seconds: int
    seed: tuple[int, ...]
    outputs: tuple[ClipOutput, ...]


def _vary(model: SceneModel, rng: np.random.Generator, spread: float, eq_bumps: int = 0) -> SceneModel:
    """A random variant of ``model``; ``spread`` scales every deviation (0 gives ``model`` itself)."""
    if spread == 0:
        return model

    def log_normal(sigma: float) -> float:
        return float(np.exp(rng.normal(0.0, sigma * spread)))

    def normal(sigma: float) -> float:
        return float(rng.normal(0.0, sigma * spread))

    events = tuple(dataclasses.replace(e, rate=e.rate * log_normal(0.6), level_db=e.level_db + normal(3.0)) for e in model.events)
    bumps = tuple(
        (float(1000.0 * 2.0 ** rng.uniform(-3.5, 3.5)), normal(4.0), float(rng.uniform(0.3, 1.5))) for _ in range(eq_bumps)
    )
    return dataclasses.replace(
        model,
        level_db=model.level_db + normal(3.0),
        noise_slope_db_per_octave=model.noise_slope_db_per_octave + normal(1.0),
        noise_lowpass_hz=model.noise_lowpass_hz * log_normal(0.35),
        modulation_rate_hz=model.modulation_rate_hz * log_normal(0.3),
        modulation_depth=model.modulation_depth * log_normal(0.3),
        hum_hz=model.hum_hz * log_normal(0.2),
        hum_level_db=model.hum_level_db + normal(4.0),
        babble_level_db=None if model.babble_level_db is None else model.babble_level_db + normal(4.0),
        events=events,
        reverb_seconds=model.reverb_seconds * log_normal(0.35),
        reverb_wet=min(1.0, model.reverb_wet * log_normal(0.3)),
        eq_bumps=model.eq_bumps + bumps,
    )


def _apply_city(model: SceneModel, offset: dict) -> SceneModel:
    """A city's character (overall level and background colour), shared by all its scenes."""
    return dataclasses.replace(
        model,
        level_db=model.level_db + offset["level_db"],
        noise_slope_db_per_octave=model.noise_slope_db_per_octave + offset["slope_db_per_octave"],
    )


def clip_name(scene: str, identifier: str, segment_id: int, subsegment: int, device: str) -> str:
    """The official file name: ``audio/[scene]-[city]-[location id]-[segment id]-[sub-segment]-[device].wav``."""
    return f"audio/{scene}-{identifier}-{segment_id}-{subsegment}-{device}.wav"


def _plan_segments(p: DemoSettings, rng: np.random.Generator) -> list[tuple]:
    """The recorded segments ``(folder, fold, scene, identifier, segment id, model)``, drawn with ``rng``.

    Locations: per scene, `locations_per_city` training ones in every city, `test_locations_per_scene`
    held-out ones spread over the cities, and `evaluation_locations_per_scene` ones for the evaluation
    set. Location ids are distinct within a city, as in the real data.
    """
    spread, cities = p.location_variation, p.cities
    city_offsets = {city: {"level_db": float(rng.normal(0, 2.0 * spread)), "slope_db_per_octave": float(rng.normal(0, 0.5 * spread))} for city in cities}
    locations = []  # (folder, fold, scene, city)
    for scene in SCENE_LABELS:
        for city in cities:
            locations += [(DEVELOPMENT_FOLDER, "train", scene, city)] * p.locations_per_city
        test_cities = [cities[i % len(cities)] for i in rng.permutation(max(len(cities), p.test_locations_per_scene))[: p.test_locations_per_scene]]
        locations += [(DEVELOPMENT_FOLDER, "test", scene, city) for city in test_cities]
        eval_cities = [cities[i % len(cities)]
                       for i in rng.permutation(max(len(cities), p.evaluation_locations_per_scene))[: p.evaluation_locations_per_scene]]
        locations += [(EVALUATION_FOLDER, "test", scene, city) for city in eval_cities]
    per_city = {city: sum(1 for location in locations if location[3] == city) for city in cities}
    location_ids = {city: iter(np.sort(rng.choice(max(1300, 2 * n), size=n, replace=False))) for city, n in per_city.items()}
    segments_per_fold = {"train": p.segments_per_location, "test": p.test_segments_per_location}
    n_segments = sum(1 if folder == EVALUATION_FOLDER else segments_per_fold[fold] for folder, fold, _, _ in locations)
    segment_ids = iter(rng.choice(max(50000, 2 * n_segments), size=n_segments, replace=False))
    recordings = []
    for folder, fold, scene, city in locations:
        identifier = f"{city}-{int(next(location_ids[city]))}"
        location_model = _vary(_apply_city(SCENE_MODELS[scene], city_offsets[city]), rng, spread, eq_bumps=2)
        for _ in range(1 if folder == EVALUATION_FOLDER else segments_per_fold[fold]):
            recordings.append((folder, fold, scene, identifier, int(next(segment_ids)), _vary(location_model, rng, 0.3 * spread)))
    return recordings


def _plan_devices(p: DemoSettings, rng: np.random.Generator, recordings: list[tuple]) -> dict[int, list[str]]:
    """Devices of each development segment: the reference device records every one; each other training
    device a random `train_device_fraction` of the training segments (at least one); test segments all nine."""
    train_positions = [i for i, r in enumerate(recordings) if r[0] == DEVELOPMENT_FOLDER and r[1] == "train"]
    devices_of = {i: ([REFERENCE_DEVICE] if recordings[i][1] == "train" else list(DEVELOPMENT_DEVICES))
                  for i, r in enumerate(recordings) if r[0] == DEVELOPMENT_FOLDER}
    n_per_device = max(1, int(round(p.train_device_fraction * len(train_positions))))
    for device in TRAIN_DEVICES:
        if device == REFERENCE_DEVICE:
            continue
        for i in rng.choice(train_positions, size=n_per_device, replace=False):
            devices_of[int(i)].append(device)
    return devices_of


def _plan_evaluation_clips(p: DemoSettings, rng: np.random.Generator, recordings: list[tuple]) -> list[tuple]:
    """Evaluation clips ``(segment index, sub-segment, device)`` in file order (audio/0.wav, ...): devices in
    turn (all fifteen equally often), scenes balanced and shuffled, then location and sub-segment."""
    n_sub = p.subsegments_per_segment
    eval_positions = {scene: [i for i, r in enumerate(recordings) if r[0] == EVALUATION_FOLDER and r[2] == scene] for scene in SCENE_LABELS}
    n_eval = p.evaluation_files
    scene_sequence = rng.permutation(np.resize(np.arange(len(SCENE_LABELS)), n_eval))
    device_sequence = rng.permutation(np.resize(np.arange(len(EVALUATION_DEVICES)), n_eval))
    chosen = set()
    for scene_index, device_index in zip(scene_sequence, device_sequence):
        candidates = [
            (i, s, EVALUATION_DEVICES[device_index])
            for i in eval_positions[SCENE_LABELS[scene_index]]
            for s in range(n_sub)
            if (i, s, EVALUATION_DEVICES[device_index]) not in chosen
        ]
        if not candidates:  # this scene's clips on this device are used up: take any free clip of the scene
            candidates = [(i, s, d) for i in eval_positions[SCENE_LABELS[scene_index]] for s in range(n_sub) for d in EVALUATION_DEVICES
                          if (i, s, d) not in chosen]
        if not candidates:
            candidates = [(i, s, d) for ps in eval_positions.values() for i in ps for s in range(n_sub) for d in EVALUATION_DEVICES if (i, s, d) not in chosen]
        chosen.add(candidates[int(rng.integers(len(candidates)))])
    eval_order = sorted(chosen)
    return [eval_order[i] for i in rng.permutation(len(eval_order))]


def plan_recordings(p: DemoSettings) -> tuple[list[RecordingJob], list[dict], list[dict]]:
    """Draw the whole recording plan from the seed.

    Returns
    -------
    jobs : one :class:`RecordingJob` per segment (development and evaluation)
    development_rows : one dict per development clip: filename, scene_label, identifier, source_label, fold ('train' | 'test')
    evaluation_rows : one dict per evaluation clip in file order (audio/0.wav, ...): filename, scene_label, identifier, source_label
    """
    rng = np.random.default_rng(p.seed)
    n_sub = p.subsegments_per_segment
    recordings = _plan_segments(p, rng)
    devices_of = _plan_devices(p, rng, recordings)
    eval_order = _plan_evaluation_clips(p, rng, recordings)
    eval_name = {item: f"audio/{number}.wav" for number, item in enumerate(eval_order)}
    jobs, development_rows = [], []
    evaluation_rows = [None] * p.evaluation_files
    for index, (folder, fold, scene, identifier, segment_id, model) in enumerate(recordings):
        outputs = []
        if folder == DEVELOPMENT_FOLDER:
            for device in sorted(devices_of[index], key=DEVELOPMENT_DEVICES.index):
                for sub in range(n_sub):
                    name = clip_name(scene, identifier, segment_id, sub, device)
                    outputs.append(ClipOutput(sub, device, name))
                    development_rows.append({"filename": name, "scene_label": scene, "identifier": identifier, "source_label": device, "fold": fold})
        else:
            for item in sorted(item for item in eval_name if item[0] == index):
                name = eval_name[item]
                outputs.append(ClipOutput(item[1], item[2], name))
                evaluation_rows[int(name[len("audio/") : -len(".wav")])] = {"filename": name, "scene_label": scene, "identifier": identifier,
                                                                            "source_label": item[2]}
        if outputs:
            jobs.append(RecordingJob(folder, scene, identifier, model, n_sub * CLIP_SECONDS, (p.seed, index), tuple(outputs)))
    development_rows.sort(key=lambda row: row["filename"])
    return jobs, development_rows, evaluation_rows


# ----------------------------------------------------------------------------------------------
# Synthesis (pure numeric core)
# ----------------------------------------------------------------------------------------------

def _db(value_db: float) -> float:
    return float(10.0 ** (value_db / 20.0))


def _unit_rms(x: np.ndarray) -> np.ndarray:
    return x * x.dtype.type(1.0 / max(float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))), 1e-12))


# dB curves (colours, responses) are smooth in log frequency: they are evaluated on this grid and
# interpolated onto the FFT bins, which is ~20 times cheaper than evaluating them on every bin.
_CURVE_GRID_LOG2_HZ = np.linspace(0.0, np.log2(48000.0), 512)


@lru_cache(maxsize=16)
def _bin_log2_hz(n_samples: int, sr: int) -> np.ndarray:
    """log2 of the rfft bin frequencies (DC clamped to 1 Hz); shape ``(n_samples // 2 + 1,)``, read-only."""
    log2_hz = np.log2(np.maximum(scipy.fft.rfftfreq(n_samples, 1.0 / sr), 1.0))
    log2_hz.flags.writeable = False
    return log2_hz


def _gain_on_bins(curve_db, n_samples: int, sr: int) -> np.ndarray:
    """Linear gain per rfft bin of a dB curve ``curve_db(frequencies) -> dB``; shape ``(n_samples // 2 + 1,)``, float32."""
    grid_gain = 10.0 ** (curve_db(2.0**_CURVE_GRID_LOG2_HZ) / 20.0)
    return np.interp(_bin_log2_hz(n_samples, sr), _CURVE_GRID_LOG2_HZ, grid_gain).astype(np.float32)


@lru_cache(maxsize=64)
def _device_gain_on_bins(device: str, n_samples: int, sr: int) -> np.ndarray:
    gain = _gain_on_bins(lambda f: device_response_db(f, DEVICE_MODELS[device]), n_samples, sr)
    gain.flags.writeable = False
    return gain


def shaped_noise(rng: np.random.Generator, n_samples: int, sr: int, curve_db) -> np.ndarray:
    """Gaussian noise of unit RMS with the spectral shape ``curve_db(frequencies) -> dB``; shape ``(n_samples,)``."""
    n_bins = n_samples // 2 + 1
    gain = _gain_on_bins(curve_db, n_samples, sr)
    spectrum = np.empty(n_bins, dtype=np.complex64)
    spectrum.real = rng.standard_normal(n_bins, dtype=np.float32) * gain
    spectrum.imag = rng.standard_normal(n_bins, dtype=np.float32) * gain
    return _unit_rms(scipy.fft.irfft(spectrum, n_samples))


def colour_db(frequencies: np.ndarray, slope_db_per_octave: float, lowpass_hz: float, highpass_hz: float = 20.0) -> np.ndarray:
    """Background noise colour in dB: a slope around 1 kHz, a gentle low-pass and a high-pass."""
    f = np.maximum(frequencies, 1.0)
    octaves = np.log2(f / 1000.0)
    lowpass = -10.0 * np.log10(1.0 + (f / lowpass_hz) ** 4)
    highpass = 10.0 * np.log10((f / highpass_hz) ** 4 / (1.0 + (f / highpass_hz) ** 4))
    return slope_db_per_octave * octaves + lowpass + highpass


def bumps_db(frequencies: np.ndarray, bumps) -> np.ndarray:
    """Sum of Gaussian bumps on a log-frequency axis: ``(centre Hz, gain dB, width octaves)`` each."""
    octaves = np.log2(np.maximum(frequencies, 1.0))
    total = np.zeros_like(octaves)
    for centre, gain, width in bumps:
        total += gain * np.exp(-0.5 * ((octaves - np.log2(centre)) / width) ** 2)
    return total


def smooth_random(rng: np.random.Generator, n_samples: int, sr: int, rate_hz: float) -> np.ndarray:
    """A slowly varying standard normal process: random knots ``rate_hz`` per second, linearly interpolated."""
    rate_hz = max(rate_hz, 1e-3)
    n_knots = int(np.ceil(n_samples / sr * rate_hz)) + 2
    return np.interp(np.arange(n_samples) * (rate_hz / sr), np.arange(n_knots), rng.standard_normal(n_knots)).astype(np.float32)


@lru_cache(maxsize=256)
def _sos(kind: str, frequencies: tuple, sr: int, order: int = 2) -> np.ndarray:
    nyquist = sr / 2.0
    frequencies = tuple(min(f, 0.95 * nyquist) for f in frequencies)
    return scipy.signal.butter(order, frequencies if len(frequencies) > 1 else frequencies[0], btype=kind, fs=sr, output="sos")


def _harmonic_tone(phase: np.ndarray, fundamental_hz: float, harmonics: int, sr: int, rolloff: float = 1.0) -> np.ndarray:
    """Sum of harmonics ``k = 1..harmonics`` (below Nyquist) of a phase track (radians), amplitudes ``k**-rolloff``.

    Read from a one-period wavetable: one interpolation per sample instead of one sine per harmonic.
    """
    k = np.arange(1, harmonics + 1)
    k = k[k * fundamental_hz < 0.45 * sr]
    if k.size == 0:
        return np.zeros_like(phase)
    table_phase = np.linspace(0.0, 2 * np.pi, 4097)
    table = np.sum(k[:, None] ** -rolloff * np.sin(k[:, None] * table_phase[None, :]), axis=0)
    return np.interp(np.mod(phase, 2 * np.pi), table_phase, table).astype(np.float32)


def synthesize_event(kind: str, rng: np.random.Generator, sr: int) -> np.ndarray:
    """One sound event of unit RMS over its duration; shape ``(n_samples,)``."""
    if kind == "speech":  # voiced source with a wandering pitch through three formant resonators, syllabic gating
        seconds = rng.uniform(0.4, 1.5)
        n = int(seconds * sr)
        f0 = rng.uniform(90, 250) * np.exp(0.1 * smooth_random(rng, n, sr, 3.0))
        phase = np.cumsum(f0) / sr
        source = np.diff(np.floor(phase), prepend=0.0)  # one pulse per glottal period
        voice = np.zeros(n)
        for low, high in ((250, 900), (900, 2300), (2300, 3400)):
            centre = rng.uniform(low, high)
            b, a = scipy.signal.iirpeak(centre, Q=centre / 120.0, fs=sr)
            voice += scipy.signal.lfilter(b, a, source)
        t = np.arange(n) / sr
        syllables = np.clip(np.sin(2 * np.pi * rng.uniform(3.0, 6.0) * t + rng.uniform(0, 2 * np.pi)), 0.0, None) ** 0.5
        return _unit_rms(voice * syllables)
    if kind == "footstep":  # short decaying band-limited thump with a heel-toe double hit
        n = int(rng.uniform(0.06, 0.12) * sr)
        t = np.arange(n) / sr
        low = rng.uniform(150, 600)
        burst = scipy.signal.sosfilt(_sos("bandpass", (round(low, -1), round(low * rng.uniform(4, 10), -2)), sr), rng.standard_normal(n))
        envelope = np.exp(-t / rng.uniform(0.008, 0.02)) + 0.5 * np.exp(-np.maximum(t - 0.03, 0) / 0.01) * (t > 0.03)
        return _unit_rms(burst * envelope)
    if kind == "bird":  # a phrase of 3-8 fast frequency sweeps between 2 and 7 kHz
        pieces = []
        for _ in range(int(rng.integers(3, 9))):
            n = int(rng.uniform(0.04, 0.15) * sr)
            f = np.linspace(rng.uniform(2000, 7000), rng.uniform(2000, 7000), n)
            pieces.append(np.sin(2 * np.pi * np.cumsum(f) / sr) * np.hanning(n))
            pieces.append(np.zeros(int(rng.uniform(0.03, 0.15) * sr)))
        return _unit_rms(np.concatenate(pieces))
    if kind in ("car", "train"):  # a pass-by: broadband (car) or rumbling (train) noise under a bell-shaped envelope
        seconds = rng.uniform(2.0, 6.0) if kind == "car" else rng.uniform(4.0, 8.0)
        n = int(seconds * sr)
        lowpass = rng.uniform(1500, 4000) if kind == "car" else rng.uniform(300, 700)
        noise = shaped_noise(rng, n, sr, lambda f: colour_db(f, -3.0, lowpass, 40.0))
        t = np.linspace(-1.0, 1.0, n)
        return _unit_rms(noise / (1.0 + (t / rng.uniform(0.15, 0.4)) ** 2))
    if kind == "clack":  # two axles over a rail joint: a pair of low, decaying knocks
        gap = int(rng.uniform(0.08, 0.2) * sr)
        knock_length = int(0.06 * sr)
        knock = scipy.signal.sosfilt(_sos("lowpass", (round(rng.uniform(600, 2000), -2),), sr), rng.standard_normal(knock_length))
        knock *= np.exp(-np.arange(knock_length) / sr / 0.015)
        pair = np.zeros(gap + knock_length)
        pair[:knock_length] += knock
        pair[gap:] += 0.8 * knock
        return _unit_rms(pair)
    if kind == "squeal":  # a brake or wheel squeal: a high tone with vibrato, faded in and out
        n = int(rng.uniform(0.3, 1.5) * sr)
        t = np.arange(n) / sr
        f = rng.uniform(2000, 5000) * (1.0 + 0.01 * np.sin(2 * np.pi * rng.uniform(4, 8) * t))
        phase = 2 * np.pi * np.cumsum(f) / sr
        return _unit_rms((np.sin(phase) + 0.3 * np.sin(2 * phase)) * np.hanning(n))
    if kind == "chime":  # an announcement chime or bell: 2-3 decaying harmonic notes
        pieces = []
        for _ in range(int(rng.integers(2, 4))):
            n = int(0.4 * sr)
            t = np.arange(n) / sr
            note = _harmonic_tone(2 * np.pi * rng.uniform(400, 1200) * t, 1200.0, 3, sr, rolloff=1.5)
            pieces.append(note * np.exp(-t / 0.15))
        return _unit_rms(np.concatenate(pieces))
    if kind == "music":  # background music: a few seconds of sustained harmonic chords
        pieces = []
        for _ in range(int(rng.integers(2, 5))):
            n = int(rng.uniform(0.5, 1.0) * sr)
            t = np.arange(n) / sr
            root_hz = 110.0 * 2.0 ** (rng.integers(0, 24) / 12.0)
            chord = sum(_harmonic_tone(2 * np.pi * root_hz * 2.0 ** (step / 12.0) * t, root_hz, 6, sr, rolloff=1.2) for step in (0, 4, 7))
            pieces.append(chord * np.minimum(1.0, np.minimum(t, t[::-1]) / 0.03))
        return _unit_rms(np.concatenate(pieces))
    if kind == "suitcase":  # wheels over tiles: mid-band noise with fast periodic modulation
        n = int(rng.uniform(1.0, 3.0) * sr)
        t = np.arange(n) / sr
        noise = scipy.signal.sosfilt(_sos("bandpass", (400, 3000), sr), rng.standard_normal(n))
        modulation = 1.0 + 0.8 * np.sin(2 * np.pi * rng.uniform(8, 16) * t)
        return _unit_rms(noise * modulation * np.hanning(n))
    raise Task1aError(f"unknown event kind '{kind}' in the demo scene model; use one of speech, footstep, bird, car, train, clack, squeal, chime, music, "
                      "suitcase")


def synthesize_scene_spectrum(model: SceneModel, rng: np.random.Generator, n_samples: int, sr: int) -> np.ndarray:
    """The rfft (shape ``(n_samples // 2 + 1,)``) of one recording of a scene variant.

    Background, hum, babble and events are mixed in time; reverberation and the location's
    colouration are applied in the frequency domain (reverberation is circular, i.e. the segment
    behaves like an excerpt of a stationary scene). Scaled so the background has RMS ``level_db`` dBFS.
    Returned as a spectrum because every device then applies its response there too.
    """
    background = shaped_noise(rng, n_samples, sr, lambda f: colour_db(f, model.noise_slope_db_per_octave, model.noise_lowpass_hz))
    background *= np.exp(np.float32(model.modulation_depth) * smooth_random(rng, n_samples, sr, model.modulation_rate_hz))
    mix = _unit_rms(background)
    if model.hum_hz > 0:
        frequency = model.hum_hz * (1.0 + model.hum_drift * smooth_random(rng, n_samples, sr, 0.5))
        phase = 2 * np.pi * np.cumsum(frequency, dtype=np.float64) / sr + rng.uniform(0, 2 * np.pi)
        mix += np.float32(_db(model.hum_level_db)) * _unit_rms(_harmonic_tone(phase, model.hum_hz, model.hum_harmonics, sr, rolloff=0.8))
    if model.babble_level_db is not None:
        babble = shaped_noise(rng, n_samples, sr, lambda f: colour_db(f, -4.0, 3500.0, 250.0))
        babble *= np.exp(np.float32(0.6) * smooth_random(rng, n_samples, sr, 8.0))
        mix += np.float32(_db(model.babble_level_db)) * _unit_rms(babble)
    margin = int(0.5 * sr)  # events may begin before the segment
    for event in model.events:
        for onset in rng.uniform(-margin, n_samples, size=rng.poisson(event.rate * (n_samples + margin) / sr)).astype(int):
            sound = _db(event.level_db) * synthesize_event(event.kind, rng, sr)
            start, stop = max(onset, 0), min(onset + len(sound), n_samples)
            if stop > start:
                mix[start:stop] += sound[start - onset : stop - onset]
    spectrum = scipy.fft.rfft(mix)
    if model.reverb_seconds > 0 and model.reverb_wet > 0:
        length = min(int(min(model.reverb_seconds, 2.0) * sr), n_samples)
        response = rng.standard_normal(length) * np.exp(-6.91 * np.arange(length) / sr / model.reverb_seconds)
        spectrum *= (1.0 + model.reverb_wet * scipy.fft.rfft(response / np.sqrt(np.sum(response**2)), n_samples)).astype(np.complex64)
    if model.eq_bumps:
        spectrum *= _gain_on_bins(lambda f: bumps_db(f, model.eq_bumps), n_samples, sr)
    return np.float32(_db(model.level_db)) * spectrum


def device_response_db(frequencies: np.ndarray, device: DeviceModel) -> np.ndarray:
    """Magnitude response of ``device`` in dB at ``frequencies`` (Hz)."""
    f = np.maximum(frequencies, 1.0)
    highpass = 10.0 * np.log10((f / device.highpass_hz) ** 4 / (1.0 + (f / device.highpass_hz) ** 4))
    lowpass = -10.0 * np.log10(1.0 + (f / device.lowpass_hz) ** 8)
    return highpass + lowpass + device.tilt_db_per_octave * np.log2(f / 1000.0) + bumps_db(frequencies, device.resonances)


def compress(x: np.ndarray, sr: int, threshold_db: float, ratio: float, seconds: float) -> np.ndarray:
    """Feed-forward dynamic range compressor on 5-ms RMS frames; shape ``(n_samples,)`` in and out.

    Written here because neither librosa nor scipy has one: gain reduction ``(1 - 1/ratio)`` dB per dB
    above the threshold, smoothed by a one-pole filter of time constant ``seconds``.
    """
    if ratio <= 1.0:
        return x
    hop = max(1, int(0.005 * sr))
    n_frames = int(np.ceil(len(x) / hop))
    padded = np.pad(x, (0, n_frames * hop - len(x)))
    level_db = 10.0 * np.log10(np.mean(padded.reshape(n_frames, hop) ** 2, axis=1) + 1e-20)
    reduction_db = -np.maximum(level_db - threshold_db, 0.0) * (1.0 - 1.0 / ratio)
    pole = np.exp(-hop / sr / seconds)
    reduction_db = scipy.signal.lfilter([1.0 - pole], [1.0, -pole], reduction_db, zi=[pole * reduction_db[0]])[0]
    gain_db = np.interp(np.arange(len(x)), np.arange(n_frames) * hop + hop / 2.0, reduction_db)
    return x * (10.0 ** (gain_db / 20.0)).astype(x.dtype)


def record_with_device(spectrum: np.ndarray, n_samples: int, device: str, rng: np.random.Generator, sr: int) -> np.ndarray:
    """A recording given as its rfft ``spectrum`` as ``device`` captures it: response, self-noise,
    compression, gain, clipping; shape ``(n_samples,)``. ``device`` names a :data:`DEVICE_MODELS` entry."""
    y = scipy.fft.irfft(spectrum * _device_gain_on_bins(device, n_samples, sr), n_samples)
    y += np.float32(_db(DEVICE_MODELS[device].noise_floor_db)) * rng.standard_normal(n_samples, dtype=np.float32)
    device = DEVICE_MODELS[device]
    y = compress(y, sr, device.compression_threshold_db, device.compression_ratio, device.compression_seconds)
    return np.clip(np.float64(_db(device.gain_db)) * y, -1.0, FULL_SCALE)


def render_job(job: RecordingJob, sr: int) -> dict[str, np.ndarray]:
    """Synthesise one recording job: ``{filename: clip}`` with clips of shape ``(sr * CLIP_SECONDS,)``."""
    rng = np.random.default_rng(job.seed)
    n_samples = job.seconds * sr
    spectrum = synthesize_scene_spectrum(job.model, rng, n_samples, sr)
    clip_samples = CLIP_SECONDS * sr
    recorded = {}
    clips = {}
    for output in job.outputs:
        if output.device not in recorded:
            device_rng = np.random.default_rng(job.seed + (EVALUATION_DEVICES.index(output.device),))
            recorded[output.device] = record_with_device(spectrum, n_samples, output.device, device_rng, sr)
        clips[output.filename] = recorded[output.device][output.subsegment * clip_samples : (output.subsegment + 1) * clip_samples]
    return clips


# ----------------------------------------------------------------------------------------------
# Writing (I/O at the edges)
# ----------------------------------------------------------------------------------------------

def _write_job(job: RecordingJob, folder: Path, sr: int) -> int:
    for filename, clip in render_job(job, sr).items():
        soundfile.write(str(folder / job.folder / filename), clip, sr, subtype=PCM_SUBTYPE, format="WAV")
    return len(job.outputs)


def _tsv(rows, columns, newline: str = "\r\n") -> str:
    """Official CSV format: tab separated, header, CRLF line endings (also after the last row); the
    DCASE2024 split files end their lines in LF (``newline="\\n"``)."""
    lines = ["\t".join(columns)] + ["\t".join(str(row[column]) for column in columns) for row in rows]
    return newline.join(lines) + newline


def _recording_key(filename: str) -> tuple[str, str]:
    """(scene-city-location-segment, device): the 10-s recording a clip was cut from."""
    prefix, _subsegment, device = filename[: -len(".wav")].rsplit("-", 2)
    return prefix, device


def draw_train_splits(train_rows: list[dict], seed: int) -> dict[int, list[dict]]:
    """DCASE2024-style training subsets of the demo's training fold: ``{percent: rows}`` for 5, 10, 25, 50.

    As the official split files are built: whole recordings (every sub-segment of one segment on one
    device), nested (split5 within split10 within split25 within split50), every scene with its
    share of the fold (``round(percent %)`` of each scene's recordings, at least one) and, within a
    scene, the devices in proportion. One ordering per scene decides all four subsets: the
    scene's recordings shuffled, then interleaved so that every prefix holds each device in
    proportion; a subset is a prefix. Rows keep the fold's order. Drawn with a generator of its own
    seeded from the demo seed, so the recording plan and the audio do not depend on it.
    """
    rng = np.random.default_rng([seed, 2024])
    by_scene: dict[str, dict[tuple[str, str], None]] = {scene: {} for scene in SCENE_LABELS}
    for row in train_rows:
        by_scene[row["scene_label"]].setdefault(_recording_key(row["filename"]), None)
    ranked: dict[str, list[tuple[str, str]]] = {}
    for scene, keys in by_scene.items():
        keys = list(keys)
        shuffled = [keys[i] for i in rng.permutation(len(keys))]
        per_device = {device: [key for key in shuffled if key[1] == device] for device in DEVELOPMENT_DEVICES}
        position = {key: (rank + 0.5) / len(group) for group in per_device.values() for rank, key in enumerate(group)}
        ranked[scene] = sorted(shuffled, key=position.__getitem__)  # stable: ties keep the shuffled order
    splits = {}
    for percent in TRAIN_SPLITS[:-1]:
        chosen = {key for keys in ranked.values() if keys for key in keys[: max(1, int(np.floor(percent / 100 * len(keys) + 0.5)))]}
        splits[percent] = [row for row in train_rows if _recording_key(row["filename"]) in chosen]
    return splits


_README = """\
SYNTHETIC DATA - NOT TAU URBAN ACOUSTIC SCENES AUDIO
====================================================

Everything in this folder was GENERATED by the task1a project (utils/demo_dataset.py) from noise,
tones and a simple acoustic model of ten scenes and fifteen recording devices. It contains NO
recording from the TAU Urban Acoustic Scenes datasets and says nothing about performance on them.
It only mimics their layout so the pipeline can run without the real data.

{content}

Regenerate with: python -m utils.demo_dataset PATH --seed N
Parameters (task1a.yaml, dataset_method_parameters.demo): {parameters}
"""

_README_CONTENT = {
    "root": "development/: like TAU-urban-acoustic-scenes-2022-mobile-development; evaluation/: like the\n"
    "TAU 2023 evaluation set (audio/0.wav ...); evaluation_labels.csv: the evaluation set's labels\n"
    "(kept outside evaluation/, as the real labels are not published), to score challenge mode.",
    DEVELOPMENT_FOLDER: "Layout of TAU-urban-acoustic-scenes-2022-mobile-development: meta.csv,\n"
    "evaluation_setup/fold1_{train,evaluate,test}.csv, audio/[scene]-[city]-[location]-[segment]-[sub-segment]-[device].wav,\n"
    "and split_setup/split{5,10,25,50}.csv: nested training subsets of fold1_train like the DCASE2024 ones.\n"
    "Training fold devices a, b, c, s1-s3; test fold a, b, c, s1-s6 on locations not in training.",
    EVALUATION_FOLDER: "Layout of the TAU evaluation sets: meta.csv and evaluation_setup/fold1_test.csv\n"
    "(filename, device_id: the DCASE2025 form, the device given at inference), audio/0.wav ...;\n"
    "devices a, b, c, d, s1-s11 (d, s7-s11 never seen in development).\n"
    "The labels are in ../evaluation_labels.csv.",
}


def _write_tables(build: Path, settings: DemoSettings, development_rows: list, evaluation_rows: list) -> None:
    development = build / DEVELOPMENT_FOLDER
    meta_columns = ("filename", "scene_label", "identifier", "source_label")
    write_text_atomic(development / "meta.csv", _tsv(development_rows, meta_columns))
    train = [row for row in development_rows if row["fold"] == "train"]
    test = [row for row in development_rows if row["fold"] == "test"]
    write_text_atomic(development / "evaluation_setup" / "fold1_train.csv", _tsv(train, ("filename", "scene_label")))
    write_text_atomic(development / "evaluation_setup" / "fold1_evaluate.csv", _tsv(test, ("filename", "scene_label")))
    write_text_atomic(development / "evaluation_setup" / "fold1_test.csv", _tsv(test, ("filename",)))
    for percent, rows in draw_train_splits(train, settings.seed).items():
        write_text_atomic(development / SPLIT_FOLDER / split_filename(percent), _tsv(rows, ("filename", "scene_label"), newline="\n"))
    evaluation = build / EVALUATION_FOLDER
    write_text_atomic(evaluation / "meta.csv", _tsv(evaluation_rows, ("filename",)))
    # the official DCASE2025 evaluation list: tab separated filename, device_id (the device is given at inference)
    listed = [{"filename": row["filename"], "device_id": row["source_label"]} for row in evaluation_rows]
    write_text_atomic(evaluation / "evaluation_setup" / "fold1_test.csv", _tsv(listed, ("filename", "device_id")))
    write_text_atomic(build / EVALUATION_LABELS_FILE, _tsv(evaluation_rows, meta_columns))
    shown = json.dumps({name: value for name, value in _as_mapping(settings).items() if name != "path"}, sort_keys=True)
    for where, folder in (("root", build), (DEVELOPMENT_FOLDER, development), (EVALUATION_FOLDER, evaluation)):
        write_text_atomic(folder / README_FILE, _README.format(content=_README_CONTENT[where], parameters=shown))


def _write_audio(build: Path, jobs: list, sr: int, progress: bool, n_jobs: int) -> None:
    from tqdm import tqdm

    for folder in (DEVELOPMENT_FOLDER, EVALUATION_FOLDER):
        (build / folder / "audio").mkdir(parents=True, exist_ok=True)
    total = sum(len(job.outputs) for job in jobs)
    workers = worker_count(n_jobs)
    with tqdm(total=total, desc="demo dataset", unit="clip", disable=None if progress else True) as bar:
        if workers == 1 or len(jobs) < 2 * workers:
            for job in jobs:
                bar.update(_write_job(job, build, sr))
            return
        # Every job carries its own seed, so the files do not depend on how jobs are shared out.
        # 'spawn' keeps workers clean when the caller has already started TensorFlow threads.
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            for written in pool.map(_write_job, jobs, [build] * len(jobs), [sr] * len(jobs), chunksize=8):
                bar.update(written)


def read_marker(root: str | os.PathLike) -> dict | None:
    """The ``.complete`` marker of a generated dataset (``{"hash", "parameters", "generator_version"}``), or None."""
    try:
        return json.loads((Path(root) / COMPLETE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _is_ours(root: Path) -> bool:
    readme = root / README_FILE
    try:
        return readme.read_text(encoding="utf-8").startswith("SYNTHETIC DATA")
    except OSError:
        return False


def _remove_abandoned_builds(root: Path) -> None:
    """Delete temporary build folders of generations that were killed (their process is gone)
    and old copies whose removal was interrupted."""
    for stale in root.parent.glob(f".{root.name}.stale-*"):
        shutil.rmtree(stale, ignore_errors=True)
    for candidate in root.parent.glob(f".{root.name}.building-*"):
        try:
            pid = int(candidate.name.split("-")[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(candidate, ignore_errors=True)
        except (ValueError, IndexError, PermissionError, OSError):
            continue


def generate_demo_dataset(root: str | os.PathLike, settings: DemoSettings, progress: bool = True, n_jobs: int = -1) -> dict:
    """Generate the synthetic demo dataset under ``root`` unless it is already there with these parameters.

    Parameters
    ----------
    root : folder of the dataset (``dataset_method_parameters.demo.path``)
    settings : the ``dataset_method_parameters.demo`` block, checked (:func:`utils.settings.demo_settings`)
    progress : show a progress bar
    n_jobs : worker processes for the audio (-1: all cores); does not change the files

    Returns
    -------
    dict with the paths ``development``, ``evaluation`` (dataset folders) and ``evaluation_labels`` (file)
    """
    root = Path(root)
    digest = parameters_hash(settings)
    paths = dataset_paths(root)
    marker = read_marker(root)
    if marker is not None and marker.get("hash") == digest:
        return paths
    if root.exists() and marker is None and not _is_ours(root):
        raise Task1aError(f"{root} exists and is not a demo dataset made by this project; remove it or set {DEMO_KEY}.path to another folder")
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_builds(root)
        build = Path(tempfile.mkdtemp(prefix=f".{root.name}.building-{os.getpid()}-", dir=root.parent))
        umask = os.umask(0)
        os.umask(umask)
        build.chmod(0o777 & ~umask)  # mkdtemp makes it private; the dataset folder should not be
    except OSError as exc:
        raise Task1aError(f"cannot create the demo dataset beside {root}: {exc.strerror}; choose a writable {DEMO_KEY}.path") from exc
    try:
        jobs, development_rows, evaluation_rows = plan_recordings(settings)
        _write_audio(build, jobs, settings.sample_rate, progress, n_jobs)
        _write_tables(build, settings, development_rows, evaluation_rows)
        write_json_atomic(build / COMPLETE_MARKER, {"hash": digest, "generator_version": GENERATOR_VERSION, "parameters": _as_mapping(settings)})
        if root.exists():
            marker = read_marker(root)
            if marker is not None and marker.get("hash") == digest:  # a concurrent generation finished first
                shutil.rmtree(build, ignore_errors=True)
                return paths
            stale = Path(tempfile.mkdtemp(prefix=f".{root.name}.stale-", dir=root.parent))
            os.replace(root, stale / root.name)
            shutil.rmtree(stale, ignore_errors=True)
        os.replace(build, root)
    except OSError as exc:
        shutil.rmtree(build, ignore_errors=True)
        raise Task1aError(f"cannot write the demo dataset {root}: {exc.strerror}; free disk space or choose another {DEMO_KEY}.path") from exc
    except BaseException:
        shutil.rmtree(build, ignore_errors=True)
        raise
    return paths


def main(argv=None) -> int:
    parser = cli.ArgumentParser(prog=cli.prog("utils.demo_dataset"),
                                description="Generate the built-in SYNTHETIC demo dataset (TAU 2022 layout, not TAU audio).")
    parser.add_argument("path", help="folder to generate into (development/, evaluation/, evaluation_labels.csv)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: task1a.yaml)")
    parser.add_argument("--jobs", type=int, default=-1, help="worker processes (-1: all cores)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)

    def body() -> int:
        # the shipped task1a.yaml's demo block (read by the parameter container), --seed checked by the registry
        settings = demo_from_block({"seed": args.seed} if args.seed is not None else {})
        paths = generate_demo_dataset(args.path, settings, progress=not args.quiet, n_jobs=args.jobs)
        for name, path in paths.items():
            print(f"{name}: {path}")
        return 0

    return run_cli(body, args.debug, resume_hint="rerun the same command (an unfinished dataset is never used)")


if __name__ == "__main__":
    sys.exit(main())
