"""The official feature extraction loop itself (DCASE2022/2023 Task 1 ``prepare_data.py`` ``do_feature_extraction``), for bench/features.py.

    DCASE_PYTHON bench/dcase_util_loop.py AUDIO_DIR FEATURE_DIR N_FILES

Runs under an interpreter that has dcase_util 0.2.20 and its era's stack (numpy < 2, scipy < 1.13,
librosa 0.9.2; it cannot share this project's environment), never this project's code. Per file,
as the official code: the feature file name (``dcase_util.utils.Path.modify``), the progress line
(``FancyLogger.line``, console and log file), ``AudioContainer().load(mono=True, fs=44100)``,
``MelExtractor.extract`` and ``FeatureContainer(...).save`` (a cpickle per file). Prints
``RATE <files/s>`` of the timed pass (after a 20-file warm-up; imports and set-up excluded) and saves
the first file's features as ``first.npy`` so that the caller can check they equal its own.
"""

import os
import sys
import time

import dcase_util
import numpy as np


def main():
    audio_dir, feature_dir, n_files = sys.argv[1], sys.argv[2], int(sys.argv[3])
    os.makedirs(feature_dir, exist_ok=True)
    dcase_util.utils.setup_logging(logging_file=os.path.join(feature_dir, "task1a.log"))
    log = dcase_util.ui.ui.FancyLogger()
    extractor = dcase_util.features.MelExtractor(  # task1_features.yaml of the official baseline
        fs=44100, spectrogram_type="magnitude", hop_length_seconds=0.02, win_length_seconds=0.04, window_type="hamming_asymmetric",
        n_mels=40, n_fft=2048, fmin=0, fmax=22050, htk=False, normalize_mel_bands=False,
    )
    files = sorted(name for name in os.listdir(audio_dir) if name.endswith(".wav"))[:n_files]

    def extract(items):
        for item_id, audio_filename in enumerate(items):
            feature_filename = dcase_util.utils.Path(path=audio_filename).modify(path_base=feature_dir, filename_extension=".cpickle")
            log.line(data="[{item: >5} / {total}] [{filename}]".format(item=item_id, total=len(items), filename=os.path.split(audio_filename)[1]), indent=2)
            audio = dcase_util.containers.AudioContainer().load(filename=os.path.join(audio_dir, audio_filename), mono=True, fs=44100)
            dcase_util.containers.FeatureContainer(data=extractor.extract(audio.data), time_resolution=0.02).save(filename=feature_filename)

    extract(files[:20])  # warm-up
    start = time.perf_counter()
    extract(files)
    elapsed = time.perf_counter() - start
    first = dcase_util.containers.FeatureContainer().load(filename=os.path.join(feature_dir, files[0][: -len(".wav")] + ".cpickle"))
    np.save(os.path.join(feature_dir, "first.npy"), first.data)
    print(f"RATE {len(files) / elapsed:.3f}")


if __name__ == "__main__":
    main()
