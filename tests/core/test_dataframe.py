"""DataFrame and variable summaries, and content fingerprints."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from nbchat.core.dataframe import (
    dataframe_kind,
    fingerprint,
    is_dataframe,
    summarize_dataframe,
    summarize_variable,
)


@pytest.fixture
def people():
    return pd.DataFrame(
        {
            "name": ["Ada", "Grace", "Linus", "Ada", None, "Guido"],
            "age": [36, 85, 54, 36, 41, None],
            "joined": pd.to_datetime(
                ["2020-01-05", "2019-03-01", "2021-07-30", "2020-01-05", "2022-02-02", "2018-11-11"]
            ),
            "active": [True, False, True, True, False, True],
        }
    )


def test_the_summary_has_shape_columns_nulls_samples_and_describe(people):
    text = summarize_dataframe(people, "people")
    assert text.startswith("DataFrame `people` (pandas): 6 rows × 4 columns")
    assert "- `name` " in text and "nulls 16.7%" in text and "4 distinct" in text
    assert "top Ada (2)" in text
    assert "- `age` float64 · nulls 16.7% · 4 distinct · min 36, max 85 · mean 50.4" in text
    assert "min 2018-11-11" in text and "max 2022-02-02" in text
    assert "First 5 of 6 rows:" in text
    assert "| name | age | joined | active |" in text
    assert "| Ada | 36 | 2020-01-05" in text
    assert "Numeric columns (describe):" in text
    assert "| stat | age |" in text and "| std | 20.6954 |" in text
    assert "| 50% | 41 |" in text


def test_wide_frames_list_the_hidden_columns(people):
    wide = pd.DataFrame(np.arange(3 * 60).reshape(3, 60), columns=[f"col{i}" for i in range(60)])
    text = summarize_dataframe(wide, "wide", max_columns=5)
    assert "3 rows × 60 columns" in text
    assert "- +55 more columns: `col5`, `col6`" in text
    assert "| col0 | col1 | col2 | col3 | col4 |" in text
    assert "col7 |" not in text


def test_cells_are_kept_on_one_line_and_pipes_are_escaped():
    frame = pd.DataFrame({"note": ["a|b", "line one\nline two", "x" * 200]})
    text = summarize_dataframe(frame, "notes")
    assert "| a\\|b |" in text
    assert "| line one line two |" in text
    assert "x" * 39 + "…" in text


def test_a_labelled_index_is_shown_in_the_sample(people):
    text = summarize_dataframe(people.set_index("joined"), "by_date")
    assert "| joined | name | age | active |" in text


def test_a_series_is_summarised_as_a_one_column_frame(people):
    text = summarize_dataframe(people["age"], "ages")
    assert "6 rows × 1 column" in text and "`age` float64" in text


def test_pandas_objects_are_recognised_by_module_and_others_are_not(people):
    assert dataframe_kind(people) == "pandas" and is_dataframe(people["age"])
    assert not is_dataframe({"a": [1]}) and dataframe_kind([1, 2]) is None
    with pytest.raises(TypeError):
        summarize_dataframe([1, 2], "numbers")


def test_the_fingerprint_follows_content_not_identity(people):
    same = people.copy()
    assert fingerprint(people) == fingerprint(same)
    same.loc[2, "age"] = 55
    assert fingerprint(people) != fingerprint(same)
    assert fingerprint(people) != fingerprint(people.rename(columns={"age": "years"}))
    assert fingerprint(people) != fingerprint(people.astype({"age": "float32"}))


def test_the_fingerprint_copes_with_unhashable_cells():
    frame = pd.DataFrame({"tags": [["a"], ["b", "c"]]})
    changed = pd.DataFrame({"tags": [["a"], ["b", "d"]]})
    assert fingerprint(frame) == fingerprint(frame.copy())
    assert fingerprint(frame) != fingerprint(changed)


def test_a_variable_is_its_type_and_repr():
    text = summarize_variable({"lr": 0.01, "epochs": 3}, "config")
    assert text == "Variable `config` (type dict, length 2), its repr:\n{'lr': 0.01, 'epochs': 3}"
    array = summarize_variable(np.zeros((2, 3)), "grid")
    assert "type numpy.ndarray" in array and "shape (2, 3)" in array


def test_a_string_variable_is_its_text_and_long_reprs_are_cut_in_the_middle():
    text = summarize_variable("line one\nline two", "doc")
    assert text.endswith("its text:\nline one\nline two")
    long = summarize_variable(list(range(100_000)), "big", max_chars=500)
    body = long.split("\n", 1)[1]
    assert len(body) < 700 and "characters left out" in body
    assert body.startswith("[0, 1, 2") and body.rstrip().endswith("...]")


def test_a_broken_repr_still_gives_a_summary():
    class Broken:
        def __repr__(self):
            raise RuntimeError("no")

    assert "its repr failed" in summarize_variable(Broken(), "thing")


def test_importing_the_module_loads_neither_pandas_nor_polars():
    code = (
        "import sys, nbchat.core.dataframe as d; "
        "print(sorted(m for m in ('pandas', 'polars', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
