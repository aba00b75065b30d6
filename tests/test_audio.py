"""utils.audio: one list of audio extensions (used by ``--predict`` too) and one RIFF chunk walker serving
the fast WAV reader and the truncation check (moved from test_features_split.py). Reading, resampling
and streaming against the feature spec are tested in test_features.py."""

from __future__ import annotations

import numpy as np
import soundfile

from utils import audio, testing

FS = 8000


def test_one_list_of_audio_extensions_that_soundfile_reads(tmp_path):
    assert testing.AUDIO_EXTENSIONS is audio.AUDIO_EXTENSIONS
    assert ".m4a" not in audio.AUDIO_EXTENSIONS  # neither libsndfile nor audioread (no ffmpeg) reads it
    y = np.random.default_rng(0).uniform(-0.3, 0.3, 4800)
    written = {".opus": dict(format="OGG", subtype="OPUS"), ".aif": dict(format="AIFF"), ".au": dict(format="AU"), ".flac": {}}
    for extension, kwargs in written.items():
        soundfile.write(str(tmp_path / f"x{extension}"), y, 48000, **kwargs)
        assert audio.load_audio(tmp_path / f"x{extension}", 48000).shape == (4800,)
    (tmp_path / "notes.txt").write_text("not audio")
    assert [p.name for p in audio.audio_files_under(tmp_path)] == sorted(f"x{e}" for e in written)


def test_one_chunk_walker_serves_the_reader_and_the_truncation_check(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(str(path), np.zeros(100), FS, subtype="PCM_16")
    raw = path.read_bytes()
    chunks = list(audio._wave_chunks(lambda at, n: raw[at : at + n], len(raw)))
    assert [c[0] for c in chunks] == [b"fmt ", b"data"] and chunks[-1][2] == 200
    assert list(audio._wave_chunks(lambda at, n: b"RIFX" + raw[4:][at : at + n], len(raw))) == []
    cut = tmp_path / "cut.wav"
    cut.write_bytes(raw[:-50])
    assert audio.wav_truncation(path) is None and "declares 200 bytes but the file holds 150" in audio.wav_truncation(cut)
    assert audio.read_plain_wav(cut) is None and audio.read_plain_wav(path)[1] == FS
