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
