"""Clip-level prediction helpers of the testing stage."""

import numpy as np
import pytest

from utils.errors import Task1aError
from utils.testing import clip_probabilities, find_recordings


def test_clip_probabilities_average_each_clips_segments():
    segments = np.array([[0.2, 0.8], [0.6, 0.4], [1.0, 0.0], [0.1, 0.9], [0.3, 0.7], [0.5, 0.5]])
    clips = clip_probabilities(segments, [2, 1, 3])
    expected = np.array([[0.4, 0.6], [1.0, 0.0], [0.3, 0.7]])
    np.testing.assert_allclose(clips, expected)
    with pytest.raises(ValueError):
        clip_probabilities(segments, [2, 2])
    with pytest.raises(ValueError):
        clip_probabilities(segments, [6, 0])


def test_find_recordings_names_relative_to_folder(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("b.wav", "a.WAV", "sub/c.flac", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = find_recordings([tmp_path])
    assert [name for _, name in found] == ["a.WAV", "b.wav", "sub/c.flac"]
    single = find_recordings([str(tmp_path / "b.wav")])
    assert single[0][1] == str(tmp_path / "b.wav")
    with pytest.raises(Task1aError, match="not found"):
        find_recordings([tmp_path / "missing.wav"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(Task1aError, match="no audio files"):
        find_recordings([tmp_path / "empty"])


# --------------------------------------------------------------------------------- --predict
import subprocess  # noqa: E402
import sys  # noqa: E402
import textwrap  # noqa: E402
from pathlib import Path  # noqa: E402

import soundfile  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def write_recording(path, seconds, rate=48000, channels=2, seed=0, block_seconds=10):
    """A long noisy recording with a slowly changing tone, written block by block (never whole in memory)."""
    rng = np.random.default_rng(seed)
    with soundfile.SoundFile(str(path), "w", rate, channels, "PCM_16") as handle:
        for start in range(0, int(seconds * rate), block_seconds * rate):
            n = min(block_seconds * rate, int(seconds * rate) - start)
            t = (start + np.arange(n)) / rate
            tone = 0.2 * np.sin(2 * np.pi * (300 + 50 * np.sin(t / 7)) * t)
            handle.write(np.clip(tone[:, None] + 0.1 * rng.standard_normal((n, channels)), -0.99, 0.99))
    return path


@pytest.fixture(scope="module")
def official_model(reference_dir):
    return reference_dir / "model_task1.tflite"


@pytest.mark.slow
def test_predict_streams_a_long_recording_in_bounded_memory(tmp_path, official_model):
    # 10 minutes of 48 kHz stereo: loaded whole it is 461 MB of float64 (plus its 230 MB mono mix and
    # 212 MB resampled), so a peak under 150 MB of traced allocations shows it was read in chunks
    # (30 s, the default recognizer.max_chunk_seconds: about 45 MB at a time; 10 s: about 15 MB).
    path = write_recording(tmp_path / "ten_minutes.wav", 600)
    warm_up = write_recording(tmp_path / "warm_up.wav", 2)  # compiles resampy's numba kernel (40+ MB of compiler objects) first
    code = textwrap.dedent(f"""
        import sys, tracemalloc
        sys.path.insert(0, {str(REPO)!r})
        from utils.features import LogMelExtractor, normalize_max_abs_int16
        from utils.testing import predict_recordings
        from utils.tflite import TFLiteClassifier
        classifier, extractor = TFLiteClassifier({str(official_model)!r}, num_threads=1), LogMelExtractor()
        predict_recordings([({str(warm_up)!r}, "warm_up.wav")], classifier, extractor, normalize_max_abs_int16, 1.0, progress=False)
        tracemalloc.start()
        names, probabilities, failures = predict_recordings([({str(path)!r}, "ten_minutes.wav")], classifier, extractor,
                                                            normalize_max_abs_int16, 1.0, progress=False)
        print(tracemalloc.get_traced_memory()[1], names, probabilities.shape, round(float(probabilities.sum()), 6), failures)
    """)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    peak, rest = run.stdout.split(" ", 1)
    assert rest.strip() == "['ten_minutes.wav'] (1, 10) 1.0 {}"
    assert int(peak) < 150 * 2**20, f"peak traced memory {int(peak) / 2**20:.0f} MB"


def test_predict_in_parallel_and_in_chunks_gives_the_whole_file_answer(tmp_path, official_model):
    from utils.audio import load_audio, segment_audio
    from utils.features import LogMelExtractor, normalize_max_abs_int16
    from utils.testing import predict_recordings
    from utils.tflite import TFLiteClassifier

    files = [write_recording(tmp_path / f"r{i}.wav", seconds, rate, channels, seed=i, block_seconds=2)
             for i, (seconds, rate, channels) in enumerate([(7.3, 48000, 2), (3.0, 44100, 1), (0.4, 22050, 1), (5.5, 32000, 2)])]
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    recordings = [(p, p.name) for p in files[:2]] + [(tmp_path / "broken.wav", "broken.wav")] + [(p, p.name) for p in files[2:]]
    classifier, extractor = TFLiteClassifier(official_model, num_threads=1), LogMelExtractor()
    # the answer from whole-file loads, one file at a time
    expected = np.stack([classifier.predict_proba(normalize_max_abs_int16(extractor.extract_batch(segment_audio(load_audio(p), 44100)))).mean(axis=0)
                         for p in files])
    for n_jobs, max_chunk_seconds in ((1, 2.0), (2, 1.0), (3, 30.0)):
        names, probabilities, failures = predict_recordings(recordings, classifier, extractor, normalize_max_abs_int16, 1.0, progress=False,
                                                            max_chunk_seconds=max_chunk_seconds, n_jobs=n_jobs)
        assert names == [p.name for p in files] and list(failures) == ["broken.wav"] and "\n" not in failures["broken.wav"]
        np.testing.assert_allclose(probabilities, expected, rtol=0, atol=1e-12)
    # a bad chunk length never reaches predict_recordings: the registry refuses it where the value is read
    from utils.parameters import checked_defaults, command_line_layer

    with pytest.raises(Task1aError, match="'recognizer.max_chunk_seconds' must be a number > 0, got -1"):
        command_line_layer(["recognizer.max_chunk_seconds=-1"], checked_defaults())


def test_quantize_rounds_half_away_from_zero_as_tflite():
    from utils.tflite import quantize

    scale = 0.0078125
    halves = (np.arange(-300, 300) + 0.5).astype(np.float32) * np.float32(scale)  # exactly k + 0.5 steps
    q = quantize(halves, scale, 3, np.int8)
    expected = np.clip(np.where(halves >= 0, np.arange(-300, 300) + 1, np.arange(-300, 300)) + 3, -128, 127)
    assert q.dtype == np.int8 and np.array_equal(q, expected)
    x = np.random.default_rng(0).uniform(-1.5, 1.5, 5000).astype(np.float32)
    scaled = x / np.float32(0.013)
    reference = np.clip(np.sign(scaled) * np.floor(np.abs(scaled) + np.float32(0.5)) - 7, -128, 127).astype(np.int8)
    assert np.array_equal(quantize(x, 0.013, -7, np.int8), reference)
