"""The system output file: written, read back, malformed files refused, its text checked."""

import numpy as np
import pytest

from utils.dataset import SCENE_LABELS
from utils.errors import Task1aError
from utils.system_output import check_output_text, output_header, read_system_output, write_system_output

N_FILES = 20
HEADER = "filename\tscene_label\t" + "\t".join(SCENE_LABELS)


def probabilities_for(n, seed=0):
    return np.random.default_rng(seed).dirichlet(np.ones(len(SCENE_LABELS)), n)


# ---------------------------------------------------------------- system output


def test_system_output_round_trip(tmp_path):
    probabilities = probabilities_for(N_FILES)
    filenames = [f"audio/{i}.wav" for i in range(N_FILES)]
    path = write_system_output(tmp_path / "out.csv", filenames, probabilities)
    lines = path.read_text().splitlines()
    assert lines[0] == HEADER
    first = lines[1].split("\t")
    assert first[0] == "audio/0.wav" and first[1] == SCENE_LABELS[int(np.argmax(probabilities[0]))]
    assert all(len(field.split(".")[1]) == 6 for field in first[2:])  # fixed decimals
    names, labels, read_back = read_system_output(path)
    assert names == filenames
    assert labels == [SCENE_LABELS[i] for i in probabilities.argmax(axis=1)]
    np.testing.assert_allclose(read_back, probabilities, atol=5e-7)
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]  # no temporary left


def test_read_system_output_maps_columns_by_name(tmp_path):
    reordered = list(reversed(SCENE_LABELS))
    row = [f"{0.1 * (i + 1):.1f}" if label == "park" else "0.0" for i, label in enumerate(reordered)]
    (tmp_path / "out.csv").write_text("scene_label\tfilename\t" + "\t".join(reordered) + "\r\npark\t7.wav\t" + "\t".join(row) + "\r\n")
    names, labels, probabilities = read_system_output(tmp_path / "out.csv")
    assert names == ["7.wav"] and labels == ["park"]
    assert probabilities[0, SCENE_LABELS.index("park")] == pytest.approx(0.1 * (reordered.index("park") + 1))
    assert probabilities.sum() == pytest.approx(probabilities[0, SCENE_LABELS.index("park")])


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("filename\tscene_label\tairport\n", "header lacks"),
        (HEADER + "\n0.wav\tbus\t" + "\t".join(["0.1"] * 9) + "\n", "line 2: 11 fields"),
        (HEADER + "\n0.wav\tbus\t" + "\t".join(["0.1"] * 9 + ["x"]) + "\n", "line 2: a probability is not a number"),
        (HEADER + "\n0.wav\tboat\t" + "\t".join(["0.1"] * 10) + "\n", "unknown scene label 'boat'"),
    ],
)
def test_read_system_output_rejects_malformed_files(tmp_path, text, message):
    (tmp_path / "out.csv").write_text(text)
    with pytest.raises(Task1aError) as error:
        read_system_output(tmp_path / "out.csv")
    assert message in str(error.value) and str(tmp_path / "out.csv") in str(error.value)


@pytest.mark.parametrize(
    "filenames, probabilities, message",
    [
        (["0.wav"], np.full((1, 9), 0.1), "shape (1, 10)"),
        (["0.wav", "0.wav"], np.full((2, 10), 0.1), "more than once"),
        (["0.wav"], np.full((1, 10), 1.5), "in [0, 1]"),
        (["a\tb.wav"], np.full((1, 10), 0.1), "tab"),
    ],
)
def test_write_system_output_validates_arguments(tmp_path, filenames, probabilities, message):
    with pytest.raises(Task1aError) as error:
        write_system_output(tmp_path / "out.csv", filenames, probabilities)
    assert message in str(error.value)
    assert not (tmp_path / "out.csv").exists()




# ---------------------------------------------------------------- the checker


def test_a_written_file_passes_the_check_and_the_count_is_optional(tmp_path):
    path = write_system_output(tmp_path / "out.csv", [f"{i}.wav" for i in range(N_FILES)], probabilities_for(N_FILES))
    text = path.read_text()
    assert text.splitlines()[0].split("\t") == output_header()
    assert check_output_text(text, "out.csv", N_FILES) == []
    assert check_output_text(text, "out.csv") == []  # no count given: neither the count nor the index bound is checked
    problems = check_output_text(text, "out.csv", N_FILES + 5)
    assert problems == [f"out.csv: {N_FILES} distinct files, the evaluation set has {N_FILES + 5}; output one row per evaluation file"]
    problems = check_output_text(text, "out.csv", N_FILES - 1)
    assert any(f"'{N_FILES - 1}.wav': index above {N_FILES - 2}" in p for p in problems)


def test_check_output_text_lists_row_problems_with_a_count_after_the_first_few():
    rows = [HEADER] + [f"x{i}.wav\tboat\t" + "\t".join(["0.1"] * 10) for i in range(5)]
    problems = check_output_text("\n".join(rows) + "\n", "o.csv", None, max_rows_per_problem=2)
    assert sum("unknown scene label 'boat'" in p for p in problems) == 2
    assert sum("is not an evaluation file name" in p for p in problems) == 2
    assert "o.csv: ... and 3 more rows with: unknown scene label" in problems
    assert check_output_text("", "o.csv")[0].startswith("o.csv: empty file")
