"""Evaluation: how right the model is, overall and per group, from its saved test results or a
fresh run of `core.evaluate.evaluator.evaluate` on the chosen dataset."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from core.config import AnswerSettings
from core.data.datasets import read_split, select_split
from core.evaluate.evaluator import evaluate
from core.runs import LITERT_FILE, METRICS_FILE, PREDICTIONS_FILE, unscored_reason
from dashboard import capacity, charts, components, state, tables

SAVED, FRESH = "Saved test results of the model", "Fresh evaluation on the dataset"
WORST = 12


def saved_results() -> tuple[dict, pd.DataFrame] | None:
    model_dir = state.selected_model()
    metrics = state.read_artifact(model_dir, METRICS_FILE)
    predictions = state.read_artifact(model_dir, PREDICTIONS_FILE)
    if metrics is None or predictions is None:
        training = any(job.active and job.run_dir.resolve() == model_dir.resolve()
                       for job in state.training_jobs().snapshot().values())
        why = ("it is still training: they are written when it ends" if training else unscored_reason(model_dir))
        st.info(f"`{state.display_name(model_dir)}` has no {METRICS_FILE} and {PREDICTIONS_FILE}: {why}. "
                "Or pick another run in the sidebar.")
        return None
    problem = tables.results_problem(metrics, predictions)
    if problem:
        st.error(f"Cannot show the saved results of `{state.display_name(model_dir)}`: {problem}. Run a fresh "
                 "evaluation, or `python -m core evaluate --split test --out` into the run folder to write them again.")
        return None
    st.caption(f"Data shown: the {metrics.get('split', 'test')} split of run `{state.display_name(model_dir)}`, "
               f"{metrics['n']:,} faces never seen in training ({METRICS_FILE}, {PREDICTIONS_FILE}).")
    return metrics, predictions


def fresh_results() -> tuple[dict, pd.DataFrame] | None:
    source = state.selected_source()
    if not source.has_images:
        st.info("A fresh evaluation needs images: choose a dataset in the sidebar.")
        return None
    table, source = components.dataset_table()
    if not source.has_images:
        return None  # the chosen dataset failed to load: dataset_table said why
    model_dir = state.selected_model()
    left, right = st.columns(2)
    saved = read_split(model_dir)
    seen = 0 if saved is None else int(table["file"].isin(saved.loc[saved["split"] != "test", "file"]).sum())
    in_test = select_split(table, model_dir, "test") if saved is not None else table.iloc[:0]
    # Offered only when the dataset shares images with the model's test split: for another dataset
    # it selected none and the page proposed to "Evaluate 0 images".
    test_only = not in_test.empty and left.checkbox(
        "Only the model's test split", value=True, key="eval_test_only",
        help="Other images of this dataset may have been used to train the model, which flatters it.")
    if test_only:
        table = in_test
    elif seen:
        left.warning(f"{seen:,} of these {len(table):,} images were used to train or validate this model: "
                     "their scores flatter it.")
    elif saved is not None:
        left.caption("None of these images was used to train or validate this model.")
    limit = right.number_input("At most this many images (random sample)", 1, None, min(len(table), 2000) or 1,
                               key="eval_limit")
    table = table.sample(n=min(int(limit), len(table)), random_state=0) if len(table) else table
    key = (str(model_dir), state.stamp(model_dir / LITERT_FILE), source, test_only, len(table))
    done = st.session_state.get("eval_fresh")
    if st.button(f"Evaluate {len(table):,} images", type="primary", disabled=table.empty, key="eval_run"):
        predictor = components.predictor_or_stop(model_dir)
        bar = st.progress(0.0, text="evaluating...")
        try:
            with capacity.analysis_slot():
                metrics, predictions = evaluate(predictor, table, progress=lambda n, total: bar.progress(
                    n / total, text=f"evaluating: {n:,} of {total:,} images"))
        except ValueError as exc:  # e.g. no face in any of the photos
            st.error(f"Cannot evaluate: {exc}")
            return None
        finally:
            bar.empty()
        st.session_state["eval_fresh"] = done = (key, metrics, predictions)
    if not done or done[0] != key:
        if table.empty:
            st.warning("No image of this dataset is in the model's test split.")
        return None
    st.caption(f"Data shown: model `{state.display_name(model_dir)}` evaluated now on {len(table):,} faces of "
               f"{source.describe()}{' that are in its test split' if test_only else ''} "
               f"({done[1]['faces']}).")
    for key, title in (("skipped", "images not scored"), ("several_faces", "photos with several faces (the most "
                                                                          "confident one scored)")):
        if done[1][key]:
            with st.expander(f"{len(done[1][key])} {title}"):
                st.dataframe(pd.DataFrame(done[1][key]), hide_index=True)
    return done[1], done[2]


def show(metrics: dict, predictions: pd.DataFrame) -> None:
    figures = tables.headline(metrics)
    for start in range(0, len(figures), 3):  # three a row: six in one row were cut to "2,…" at 800 px
        for column, (label, value, help) in zip(st.columns(3), figures[start:start + 3]):
            column.metric(label, value, help=help)

    errors = tables.with_error(predictions)
    aged = errors[errors["age_true"].notna()]
    left, right = st.columns([2, 3])
    if "gender_confusion" in metrics:
        left.plotly_chart(charts.heatmap(tables.confusion(metrics["gender_confusion"]), "Gender confusion",
                                         "predicted", "true", row_share=True), key="eval_gender_confusion")
    if "age_band_confusion" in metrics:
        right.plotly_chart(charts.heatmap(tables.confusion(metrics["age_band_confusion"]), "Age-band confusion",
                                          "predicted", "true", row_share=True), key="eval_band_confusion")
    elif "by_bracket" in metrics:
        right.plotly_chart(charts.bars(tables.group_metrics(metrics, "by_bracket"), "group", "age_in_bracket",
                                       "Ages inside the true bracket", "share", text="n", y_range=(0, 1.1),
                                       value_format=".1%"), key="eval_bracket_share")
    if len(aged):
        left, right = st.columns(2)
        left.plotly_chart(charts.histogram(aged, "age_error", "Age error (predicted - true)", color="gender_true",
                                           bin_size=2, x_title="years"), key="eval_error_histogram")
        right.plotly_chart(charts.scatter(aged, "age_true", "age_pred", "Predicted vs true age", color="gender_true",
                                          hover=["file"], diagonal=True,
                                          labels={"age_true": "true age", "age_pred": "predicted age"}),
                           key="eval_scatter")

    trust(metrics)

    st.subheader("By group")
    available = tables.groupings(metrics)
    grouping = st.radio("Group by", list(available), horizontal=True, key="eval_grouping")
    groups = tables.group_metrics(metrics, available[grouping])
    left, right = st.columns(2)
    if groups["age_mae"].notna().any():
        left.plotly_chart(charts.bars(groups, "group", "age_mae", f"Age MAE by {grouping}", "MAE (years)", text="n"),
                          key="eval_group_mae")
    else:
        left.plotly_chart(charts.bars(groups, "group", "age_in_bracket", f"Ages inside the bracket by {grouping}",
                                      "share", text="n", y_range=(0, 1.1), value_format=".1%"), key="eval_group_mae")
    right.plotly_chart(charts.bars(groups, "group", "gender_accuracy", f"Gender accuracy by {grouping}",
                                   "accuracy", text="n", y_range=(0, 1.1), value_format=".1%"),
                       key="eval_group_accuracy")

    st.subheader("Largest age errors")
    error_gallery(tables.worst_age_errors(predictions, WORST))
    st.subheader("Gender mistakes")
    st.caption("The wrong genders the model was surest of.")
    mistakes = tables.gender_errors(predictions, WORST)
    if mistakes.empty:
        st.success("No gender mistake.")
    else:
        error_gallery(mistakes)


def trust(metrics: dict) -> None:
    """Whether the answers hold what they say: interval coverage per band, age checks, and the
    gender confidence's reliability diagram."""
    st.subheader("Can the answers be trusted?")
    coverage, checks = tables.interval_coverage(metrics), tables.age_checks(metrics)
    left, right = st.columns(2)
    if coverage.empty:
        left.info("This model has no age intervals: write its calibration with "
                  "`python -m core calibrate --model DIR` and evaluate again.")
    else:
        block, target = metrics["age_interval"], AnswerSettings().interval
        left.plotly_chart(charts.coverage(coverage, f"{target:.0%} age intervals: {block['coverage']:.1%} covered, "
                                                    f"median width {block['median_width']:.0f} years", target),
                          key="eval_coverage")
    gender = metrics.get("gender_reliability")
    if gender:
        right.plotly_chart(charts.reliability(gender["bins"], f"Gender confidence reliability (ECE {gender['ece']:.1%})"),
                           key="eval_reliability")
    if not checks.empty:
        st.caption("Age checks with the intervals: share of faces decided, and how often a decision is wrong "
                   "(false over: younger than the threshold but said over; false under: the other way).")
        st.dataframe(checks, hide_index=True, column_config={
            name: st.column_config.NumberColumn(format="percent")
            for name in ("decided", "uncertain", "wrong_of_decided", "false_over", "false_under")})


def error_gallery(rows: pd.DataFrame) -> None:
    """Some predictions with their images (when on this machine) and as a table: the age errors
    and the gender mistakes are shown apart, since sorting both together hides one of them."""
    images = state.find_images(rows["file"], state.selected_source())
    shown = rows[rows["file"].isin(images.keys())]
    if shown.empty:
        st.caption("The images of these files are not on this machine: choose their dataset in the sidebar to see them.")
    else:
        components.gallery([images[f] for f in shown["file"]],
                           [f"true {r.age_true} {r.gender_true}, predicted {r.age_pred:.0f} {r.gender_pred} "
                            f"(p female {r.p_female:.2f})" for r in shown.itertuples()])
    st.dataframe(rows, hide_index=True)


st.title("Evaluation")
if state.server_roots():
    mode = st.radio("Results", [SAVED, FRESH], horizontal=True, key="eval_mode")
else:  # a fresh evaluation reads a dataset's images on the server
    mode = SAVED
    st.caption(state.without_server_folders("a fresh evaluation (it reads a dataset's images on the server)"))
results = saved_results() if mode == SAVED else fresh_results()
if results:
    show(*results)
