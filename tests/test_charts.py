"""Chart builders and table reshaping of the dashboard, checked on hand-made tables (no Streamlit)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dashboard import charts, tables


@pytest.fixture
def faces() -> pd.DataFrame:
    """Seven faces as core's loaders return them (gender 0/1, race 0-4 or -1)."""
    raw = pd.DataFrame({"file": [f"f{i}.jpg" for i in range(7)], "path": None,
                        "age": [3, 15, 25, 25, 41, 67, 30], "gender": [0, 1, 1, 0, 1, 0, 1],
                        "race": [0, 1, 2, 0, -1, 3, 0]})
    return tables.named(raw)


@pytest.fixture
def predictions() -> pd.DataFrame:
    return pd.DataFrame({"file": ["a", "b", "c", "d"], "age_true": [20, 40, 60, 8],
                         "age_pred": [22.0, 30.0, 61.0, 8.5], "gender_true": ["male", "female", "male", "female"],
                         "gender_pred": ["male", "female", "female", "female"], "p_female": [0.1, 0.9, 0.6, 0.8],
                         "race": ["White", "", "Asian", "Black"]})


def test_named_spells_out_labels_and_bands(faces):
    assert faces["gender"].tolist() == ["male", "female", "female", "male", "female", "male", "female"]
    assert faces["race"].tolist() == ["White", "Black", "Asian", "White", "Unknown", "Indian", "White"]
    assert faces["age_band"].tolist() == ["0-12", "13-19", "20-39", "20-39", "40-59", "60+", "20-39"]


def test_filter_faces_is_inclusive_and_combines_filters(faces):
    shown = tables.filter_faces(faces, (15, 41), ["female"], ["White", "Black", "Unknown"])
    assert shown["file"].tolist() == ["f1.jpg", "f4.jpg", "f6.jpg"]
    assert tables.filter_faces(faces, (0, 120), [], tables.RACE_NAMES).empty


def test_counts_keeps_empty_categories(faces):
    grid = tables.counts(faces, "age_band", "race", ["0-12", "13-19", "20-39", "40-59", "60+"], tables.RACE_NAMES)
    assert grid.shape == (5, 6)
    assert grid.loc["20-39", "White"] == 2 and grid.loc["60+", "Indian"] == 1
    assert grid["Others"].sum() == 0 and grid.to_numpy().sum() == 7


def test_histogram_counts_every_row_in_its_colour(faces):
    fig = charts.histogram(faces, "age", "Age", color="gender")
    by_name = {trace.name: len(trace.x) for trace in fig.data}
    assert by_name == {"male": 3, "female": 4}
    assert [trace.name for trace in fig.data] == ["male", "female"]  # fixed order, fixed colours
    assert fig.data[0].marker.color == charts.GENDER_COLORS["male"]
    assert all((trace.xbins.start, trace.xbins.size) == (0, 5) for trace in fig.data)  # shared bins
    signed = charts.histogram(pd.DataFrame({"e": [-3.5, 0.2, 7.0]}), "e", "Error", bin_size=2)
    assert (signed.data[0].xbins.start, signed.data[0].xbins.end) == (-4, 9.0)
    assert fig.layout.title.text == "Age"


def test_share_values_follow_the_category_order(faces):
    fig = charts.share(faces, "race", "Race")
    assert list(fig.data[0].labels) == ["White", "Black", "Asian", "Indian", "Unknown"]
    assert list(fig.data[0].values) == [3, 1, 1, 1, 1]
    assert fig.data[0].hole == pytest.approx(0.45)


def test_pyramid_puts_males_left_and_keeps_counts(faces):
    fig = charts.pyramid(faces, "Pyramid", bin_years=10)
    male, female = fig.data
    assert male.name == "male" and female.name == "female"
    assert list(male.y) == ["0-9", "10-19", "20-29", "30-39", "40-49", "50-59", "60-69"]
    assert list(male.x) == [-1, 0, -1, 0, 0, 0, -1]
    assert list(female.x) == [0, 1, 1, 1, 1, 0, 0]
    assert list(male.customdata) == [1, 0, 1, 0, 0, 0, 1]  # hover shows the count, not its sign
    ticks = list(fig.layout.xaxis.tickvals)
    assert ticks == [-t for t in reversed(ticks)] and 0 in ticks
    assert list(fig.layout.xaxis.ticktext) == [str(abs(t)) for t in ticks]


@pytest.mark.parametrize("peak, expected", [(0, [0]), (3, [-3, -2, -1, 0, 1, 2, 3]), (37, [-30, -20, -10, 0, 10, 20, 30]),
                                            (1500, [-1500, -1000, -500, 0, 500, 1000, 1500])])
def test_symmetric_ticks(peak, expected):
    assert charts._symmetric_ticks(peak) == expected


def test_heatmap_row_share_colours_recall_and_writes_counts():
    grid = tables.confusion({"labels": ["male", "female"], "matrix": [[8, 2], [1, 3]]})
    fig = charts.heatmap(grid, "Gender confusion", "predicted", "true", row_share=True)
    np.testing.assert_allclose(fig.data[0].z, [[0.8, 0.2], [0.25, 0.75]])
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0, 1)  # shares on an absolute scale
    assert [list(row) for row in fig.data[0].text] == [["8<br>80%", "2<br>20%"], ["1<br>25%", "3<br>75%"]]
    assert list(fig.data[0].x) == ["male", "female"] and list(fig.data[0].y) == ["male", "female"]


def test_heatmap_of_counts_keeps_empty_rows():
    grid = pd.DataFrame([[0, 0], [2, 5]], index=["a", "b"], columns=["x", "y"])
    fig = charts.heatmap(grid, "Counts", "x", "y")
    np.testing.assert_array_equal(fig.data[0].z, [[0, 0], [2, 5]])
    assert [list(row) for row in fig.data[0].text] == [["0", "0"], ["2", "5"]]


def test_history_long_and_curves_overlay_runs():
    history = pd.DataFrame({"epoch": [1, 2, 3], "age_mae": [20.0, 15.0, 12.0], "val_age_mae": [22.0, 18.0, 16.0]})
    long = tables.history_long({"run-a": history, "run-b": history.head(2)}, "age_mae")
    assert len(long) == 3 * 2 + 2 * 2
    assert long.query("run == 'run-b' and split == 'validation'")["value"].tolist() == [22.0, 18.0]
    fig = charts.curves(long, "Age MAE", "years")
    lines = {(t.legendgroup, t.line.dash): list(t.y) for t in fig.data}
    assert lines == {("run-a, train", "solid"): [20.0, 15.0, 12.0], ("run-a, validation", "dash"): [22.0, 18.0, 16.0],
                     ("run-b, train", "solid"): [20.0, 15.0], ("run-b, validation", "dash"): [22.0, 18.0]}


def test_history_long_without_the_metric_is_empty():
    assert tables.history_long({"r": pd.DataFrame({"epoch": [1], "loss": [1.0]})}, "age_mae").empty


def test_scatter_diagonal_spans_the_data(predictions):
    fig = charts.scatter(predictions, "age_true", "age_pred", "Predicted vs true", color="gender_true", diagonal=True)
    diagonal = fig.data[-1]
    assert diagonal.name == "perfect"
    assert list(diagonal.x) == [8.0, 61.0] and list(diagonal.y) == [8.0, 61.0]
    assert sum(len(t.x) for t in fig.data[:-1]) == 4


def test_group_metrics_and_bars_show_values_and_sizes():
    metrics = {"by_gender": {"male": {"n": 10, "gender_accuracy": 0.9, "age_mae": 5.5},
                             "female": {"n": 0, "gender_accuracy": None, "age_mae": None}}}
    groups = tables.group_metrics(metrics, "by_gender")
    assert groups.to_dict("records") == [{"group": "male", "n": 10, "gender_accuracy": 0.9, "age_mae": 5.5}]
    fig = charts.bars(groups, "group", "gender_accuracy", "Accuracy", "accuracy", text="n", value_format=".1%")
    assert list(fig.data[0].y) == [0.9]
    assert list(fig.data[0].text) == ["90.0%<br>n=10"]
    assert tables.group_metrics({}, "by_race").empty


def test_worst_errors_put_gender_mistakes_first(predictions):
    worst = tables.worst_errors(predictions, 3)
    assert worst["file"].tolist() == ["c", "b", "a"]  # c: wrong gender; then by |age error| 10, 2
    assert worst["age_error"].tolist() == [1.0, -10.0, 2.0]


def test_people_keeps_found_faces_with_their_band():
    results = pd.DataFrame({"file": ["x", "y", "z"], "status": ["ok", "no_face", "ok"], "age": [34.2, np.nan, 70.0],
                            "gender": ["male", None, "female"]})
    found = tables.people(results)
    assert found["file"].tolist() == ["x", "z"] and found["age_band"].tolist() == ["20-39", "60+"]
