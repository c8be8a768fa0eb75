"""Chart builders and table reshaping of the dashboard, checked on hand-made tables (no Streamlit)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.labels import GENDER_COLOURS, RACE_NAMES
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
    assert tables.filter_faces(faces, (0, 120), [], RACE_NAMES).empty


def test_faces_without_an_age_show_only_while_the_age_range_is_whole(faces):
    ageless = faces.assign(age=[-1, *faces["age"][1:]])  # f0.jpg: a source that gives gender only
    everyone = tables.filter_faces(ageless, (0, 120), ["male", "female"], RACE_NAMES)
    assert "f0.jpg" in set(everyone["file"]) and len(everyone) == len(faces)
    narrowed = tables.filter_faces(ageless, (0, 120), ["male", "female"], RACE_NAMES, keep_unknown_age=False)
    assert set(narrowed["file"]) == set(faces["file"]) - {"f0.jpg"}


def test_bands_within_an_age_range():
    assert tables.bands_within((0, 120)) == ["0-12", "13-19", "20-39", "40-59", "60+"]
    assert tables.bands_within((13, 39)) == ["13-19", "20-39"] and tables.bands_within((12, 13)) == ["0-12", "13-19"]


def test_counts_keeps_empty_categories(faces):
    grid = tables.counts(faces, "age_band", "race", ["0-12", "13-19", "20-39", "40-59", "60+"], RACE_NAMES)
    assert grid.shape == (5, 6)
    assert grid.loc["20-39", "White"] == 2 and grid.loc["60+", "Indian"] == 1
    assert grid["Others"].sum() == 0 and grid.to_numpy().sum() == 7


def test_histogram_counts_every_row_in_its_colour(faces):
    fig = charts.histogram(faces, "age", "Age", color="gender")
    by_name = {trace.name: len(trace.x) for trace in fig.data}
    assert by_name == {"male": 3, "female": 4}
    assert [trace.name for trace in fig.data] == ["male", "female"]  # fixed order, fixed colours
    assert fig.data[0].marker.color == GENDER_COLOURS["male"]
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


def test_runs_of_different_lengths_align_by_their_share_of_planned_epochs():
    short = pd.DataFrame({"epoch": [1, 2, 3], "loss": [3.0, 2.0, 1.0]})
    full = pd.DataFrame({"epoch": range(1, 41), "loss": 1.0})
    long = tables.history_long({"short": short, "full": full}, "loss", planned={"short": 10, "full": 40})
    assert long.loc[long["run"] == "short", "progress"].tolist() == pytest.approx([0.1, 0.2, 0.3])
    assert long.loc[long["run"] == "full", "progress"].max() == pytest.approx(1.0)
    fig = charts.curves(long, "Loss", "loss", x="progress")
    assert list(fig.layout.xaxis.range) == [0, 1.02] and fig.layout.xaxis.tickformat == ".0%"
    assert "progress" not in tables.history_long({"short": short}, "loss")  # epochs unless asked


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
    assert groups.drop(columns="age_in_bracket").to_dict("records") == [{"group": "male", "n": 10, "gender_accuracy": 0.9, "age_mae": 5.5}]
    fig = charts.bars(groups, "group", "gender_accuracy", "Accuracy", "accuracy", text="n", value_format=".1%")
    assert list(fig.data[0].y) == [0.9]
    assert list(fig.data[0].text) == ["90.0%<br>n=10"]
    assert tables.group_metrics({}, "by_race").empty


@pytest.fixture
def many_mistakes(predictions) -> pd.DataFrame:
    """The predictions plus 14 confident gender mistakes with a 1-year age error and one
    40-year age error of the right gender: more gender mistakes than a table shows."""
    mistakes = pd.DataFrame({"file": [f"g{i}" for i in range(14)], "age_true": 30, "age_pred": 31.0,
                             "gender_true": "male", "gender_pred": "female", "p_female": np.linspace(0.55, 0.99, 14),
                             "race": "White"})
    old = pd.DataFrame({"file": ["old"], "age_true": [80], "age_pred": [40.0], "gender_true": ["female"],
                        "gender_pred": ["female"], "p_female": [0.7], "race": ["Black"]})
    return pd.concat([mistakes, predictions, old], ignore_index=True)


def test_worst_age_errors_are_sorted_by_absolute_error_whatever_the_gender(many_mistakes):
    worst = tables.worst_age_errors(many_mistakes, 3)
    assert worst["file"].tolist() == ["old", "b", "a"]
    assert worst["age_error"].tolist() == [-40.0, -10.0, 2.0]


def test_gender_errors_are_the_surest_mistakes_only(many_mistakes):
    wrong = tables.gender_errors(many_mistakes, 12)
    assert len(wrong) == 12 and not wrong["gender_correct"].any()
    confidence = (wrong["p_female"] - 0.5).abs().tolist()
    assert confidence == sorted(confidence, reverse=True) and wrong["file"].iloc[0] == "g13"
    assert tables.gender_errors(many_mistakes.query("file == 'old'"), 12).empty


def test_people_keeps_found_faces_with_their_band():
    results = pd.DataFrame({"file": ["x", "y", "z"], "status": ["ok", "no_face", "ok"], "age": [34.2, np.nan, 70.0],
                            "gender": ["male", None, "female"]})
    found = tables.people(results)
    assert found["file"].tolist() == ["x", "z"] and found["age_band"].tolist() == ["20-39", "60+"]


# -- one colour per category, legends clear of the modebar ---------------------------------------

def _colours(fig) -> dict[str, str]:
    """Colour of each category drawn in a figure: pie slices, or traces named after a category."""
    if fig.data and fig.data[0].type == "pie":
        return dict(zip(fig.data[0].labels, fig.data[0].marker.colors))
    return {trace.name: trace.marker.color for trace in fig.data}


def test_a_race_keeps_its_colour_when_another_is_filtered_out(faces):
    with_white = _colours(charts.share(faces, "race", "Race"))
    without_white = _colours(charts.share(faces[faces["race"] != "White"], "race", "Race"))
    assert "White" not in without_white and "Black" in without_white
    assert all(without_white[race] == with_white[race] for race in without_white)
    assert len(set(with_white.values())) == len(with_white)  # and no two races share one


@pytest.mark.parametrize("column", ["race", "gender", "age_band"])
def test_every_category_has_one_fixed_colour_on_every_chart(faces, column):
    only_some = faces[faces[column] != faces[column].iloc[0]]
    for fig in (charts.share(only_some, column, "s"), charts.histogram(only_some, "age", "h", color=column)):
        drawn = _colours(fig)
        assert drawn and drawn == {category: charts.CATEGORY_COLORS[category] for category in drawn}


def test_bars_of_groups_take_the_colour_of_their_category():
    groups = pd.DataFrame({"group": ["female", "Asian", "40-59"], "n": [1, 2, 3], "age_mae": [1.0, 2.0, 3.0]})
    fig = charts.bars(groups, "group", "age_mae", "MAE", "years")
    assert list(fig.data[0].marker.color) == [charts.CATEGORY_COLORS[g] for g in groups["group"]]


def test_bars_leave_room_for_the_text_above_the_tallest():
    groups = pd.DataFrame({"group": ["male", "female"], "n": [3, 4], "age_mae": [4.0, 8.0]})
    assert charts.bars(groups, "group", "age_mae", "MAE", "years", text="n").layout.yaxis.range[1] >= 1.2 * 8.0
    fixed = charts.bars(groups, "group", "age_mae", "MAE", "years", y_range=(0, 20))
    assert tuple(fixed.layout.yaxis.range) == (0, 20)


def test_pyramid_legend_names_only_the_genders_drawn(faces):
    males = charts.pyramid(faces[faces["gender"] == "male"], "Pyramid")
    assert [trace.name for trace in males.data] == ["male"] and all(x <= 0 for x in males.data[0].x)
    females = charts.pyramid(faces[faces["gender"] == "female"], "Pyramid")
    assert [trace.name for trace in females.data] == ["female"] and all(x >= 0 for x in females.data[0].x)


def _every_builder(faces, predictions) -> list:
    long = tables.history_long({"r": pd.DataFrame({"epoch": [1, 2], "loss": [2.0, 1.0], "val_loss": [2.5, 1.5]})},
                               "loss")
    groups = pd.DataFrame({"group": ["male", "female"], "n": [3, 4], "age_mae": [4.0, 5.0]})
    grid = tables.counts(faces, "age_band", "race", ["0-12"], ["White"])
    return [charts.histogram(faces, "age", "h", color="gender"), charts.share(faces, "race", "s"),
            charts.pyramid(faces, "p"), charts.heatmap(grid, "m", "x", "y"), charts.curves(long, "c", "loss"),
            charts.scatter(predictions, "age_true", "age_pred", "sc", color="gender_true", diagonal=True),
            charts.bars(groups, "group", "age_mae", "b", "years", text="n")]


def test_no_legend_sits_under_the_modebar(faces, predictions):
    for fig in _every_builder(faces, predictions):
        layout = fig.layout
        # the legend below the plot and across it; the modebar upright in its own right margin, the title left
        assert (layout.legend.orientation, layout.legend.yanchor) == ("h", "top") and layout.legend.y < 0
        assert layout.modebar.orientation == "v" and layout.margin.r >= 35 and layout.margin.t >= 40
        assert (layout.title.x, layout.title.xanchor) == (0, "left")


def test_donut_uses_the_whole_width(faces):
    fig = charts.share(faces, "race", "Race")
    pie = fig.data[0]
    assert pie.domain.x is None or tuple(pie.domain.x) == (0, 1)  # no legend column beside it
    assert -0.1 < fig.layout.legend.y < 0  # the legend right below it: no axis labels to clear
    assert pie.textinfo == "percent" and pie.hole == pytest.approx(0.45)


def test_curves_give_each_run_a_colour_of_its_own():
    history = pd.DataFrame({"epoch": [1, 2], "loss": [2.0, 1.0], "val_loss": [2.5, 1.5]})
    runs = [f"run-{i}" for i in range(3)]
    fig = charts.curves(tables.history_long({run: history for run in runs}, "loss"), "Loss", "loss")
    colour = {(t.legendgroup.split(", ")[0], t.line.dash): t.line.color for t in fig.data}
    assert [colour[(run, "solid")] for run in runs] == charts.RUN_COLORS[:3]  # a qualitative palette
    assert all(colour[(run, "dash")] == colour[(run, "solid")] for run in runs)  # validation: same colour, dashed
    long = tables.history_long({"long": pd.DataFrame({"epoch": range(1, 41), "loss": 1.0, "val_loss": 1.0})}, "loss")
    axis = charts.curves(long, "Loss", "loss").layout.xaxis
    assert axis.nticks <= 6 and axis.dtick is None  # 40 epochs: ten labels overlapped in a 200 px column


def test_coverage_chart_shows_each_banding_against_the_promise():
    metrics = {"age_interval": {
        "by_predicted_band": {"0-12": {"n": 10, "coverage": 0.8, "median_width": 3.0},
                              "13-19": {"n": 0, "coverage": None, "median_width": None},
                              "20-39": {"n": 30, "coverage": 0.83, "median_width": 13.0}},
        "by_true_band": {"0-12": {"n": 12, "coverage": 0.75, "median_width": 3.0},
                         "20-39": {"n": 28, "coverage": 0.86, "median_width": 13.0}}}}
    table = tables.interval_coverage(metrics)
    assert table["by"].tolist() == ["predicted age", "predicted age", "true age", "true age"]  # empty band dropped
    fig = charts.coverage(table, "Coverage", 0.8)
    assert [trace.name for trace in fig.data] == ["by predicted age", "by true age"]
    assert list(fig.data[0].y) == [0.8, 0.83] and fig.data[0].text[1] == "83%"
    # inside their own bars (ten labels above grouped bars ran into one another); n in the hover
    assert {trace.textposition for trace in fig.data} == {"inside"} and list(fig.data[0].customdata[1]) == [13.0, 30]
    assert fig.layout.shapes[0].y0 == 0.8  # the promised coverage as a line
    assert tables.interval_coverage({}).empty


def test_reliability_diagram_puts_bins_against_the_diagonal():
    bins = [{"low": 0.5, "high": 0.75, "n": 4, "confidence": 0.6, "accuracy": 0.5},
            {"low": 0.75, "high": 1.0, "n": 0, "confidence": None, "accuracy": None},
            {"low": 0.75, "high": 1.0, "n": 16, "confidence": 0.9, "accuracy": 0.95}]
    fig = charts.reliability(bins, "Reliability")
    diagonal, model = fig.data
    assert list(diagonal.x) == [0.5, 1] and list(diagonal.y) == [0.5, 1]
    assert list(model.x) == [0.6, 0.9] and list(model.y) == [0.5, 0.95]  # empty bins left out
    assert model.marker.size[1] > model.marker.size[0]  # bigger bins, bigger points


def test_reliability_diagram_shows_bins_right_less_than_30_percent_of_the_time():
    bins = [{"n": 5, "confidence": 0.55, "accuracy": 0.12}, {"n": 50, "confidence": 0.9, "accuracy": 0.9}]
    low, high = charts.reliability(bins, "Reliability").layout.yaxis.range
    assert low < 0.12 and high >= 1  # it was cut at 30 %
    assert charts.reliability(bins[1:], "Reliability").layout.yaxis.range[0] == 0.3  # the usual view otherwise


def test_age_check_table_lists_thresholds_in_order():
    metrics = {"age_checks": {"13": {"n": 5, "decided": 0.9, "uncertain": 0.1, "wrong_of_decided": 0.0,
                                     "false_over": 0.0, "false_under": 0.0},
                              "18": {"n": 5, "decided": 0.8, "uncertain": 0.2, "wrong_of_decided": 0.25,
                                     "false_over": 0.5, "false_under": 0.0}}}
    table = tables.age_checks(metrics)
    assert table["threshold"].tolist() == [13, 18] and table.loc[1, "false_over"] == 0.5


def test_batch_rows_get_their_age_range_as_text():
    results = pd.DataFrame({"file": ["a", "b", "c"], "status": ["ok", "ok", "no_face"], "age": [28.3, 5.0, None],
                            "age_low": pd.array([25, 4, None], "Int64"), "age_high": pd.array([31, 6, None], "Int64")})
    shown = tables.with_age_range(results)
    assert list(shown.columns) == ["file", "status", "age", "age_range", "age_low", "age_high"]
    assert shown["age_range"].tolist() == ["25-31", "4-6", ""]


def test_a_run_summary_reads_the_best_validation_epoch_and_skips_what_is_missing(tmp_path):
    from core.runs import run_summary

    assert run_summary(tmp_path)["epochs"] == 0 and run_summary(tmp_path)["test_age_mae"] is None
    (tmp_path / "history.csv").write_text("epoch,val_loss,val_age_mae,val_gender_accuracy\n1,3.0,9.0,0.8\n"
                                          "2,2.0,7.5,0.9\n3,2.5,7.0,0.95\n4,,,\n")
    (tmp_path / "model.json").write_text('{"config": {"image_size": 48, "width": 24}}')
    (tmp_path / "metrics.json").write_text('{"age_mae": "many", "gender_accuracy": 0.91}')
    assert run_summary(tmp_path) == {"epochs": 4, "image_size": 48, "width": 24, "best_val_age_mae": 7.5,
                                     "best_val_gender_accuracy": 0.9, "test_age_mae": None, "test_gender_accuracy": 0.91}


def test_a_set_with_brackets_and_albums_shows_what_it_has():
    """Adience-like results: no exact ages, brackets, an album column; rows without a gender."""
    from core.evaluate.metrics import predictions_table, score

    table = pd.DataFrame({"file": list("abcd"), "age": [5, 5, 28, 28], "gender": [0, 1, -1, 1], "race": -1,
                          "age_lo": [4, 4, 25, 25], "age_hi": [6, 6, 32, 32], "album": ["x", "x", "y", "y"]})
    metrics = score(predictions_table(table, np.array([3.0, 5.0, 30.0, 40.0]), np.array([0.2, 0.3, 0.9, 0.8])))
    labels = [label for label, _, _ in tables.headline(metrics)]
    assert labels == ["Faces", "Gender accuracy", "Women / men recognised", "Age in its bracket", "Outside the bracket by"]
    assert tables.groupings(metrics) == {"gender": "by_gender", "age band": "by_age_band", "race": "by_race",
                                         "age bracket": "by_bracket", "album": "by_album"}
    brackets = tables.group_metrics(metrics, "by_bracket")
    assert brackets["age_in_bracket"].tolist() == [0.5, 0.5] and brackets["age_mae"].isna().all()
    predictions = predictions_table(table, np.array([3.0, 5.0, 30.0, 40.0]), np.array([0.2, 0.3, 0.9, 0.8]))
    assert tables.gender_errors(predictions, 5)["file"].tolist() == ["b"]  # c has no gender: never a mistake
    assert tables.worst_age_errors(predictions, 5).empty  # no exact age, no error in years
