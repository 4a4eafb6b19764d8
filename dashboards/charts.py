"""Altair charts (Streamlit ships Altair, so no extra plotting dependency). Each takes a tidy DataFrame."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import altair as alt
import pandas as pd

from harness.analysis.formatting import duration

METHOD_COLOURS = alt.Scale(domain=["prompt", "dspy", "api", "api_dspy", "lora", "qlora", "full"],
                           range=["#7f7f7f", "#bcbd22", "#9467bd", "#e377c2", "#1f77b4", "#2ca02c", "#d62728"])
FEASIBLE_SHAPES = alt.Scale(domain=[True, False], range=["square", "circle"])


def pareto(points: pd.DataFrame, x_title: str, y_title: str) -> alt.Chart:
    """Accuracy against cost, one colour per method, 95% intervals as bars, the Pareto front as a step line."""
    base = alt.Chart(points).encode(x=alt.X("cost:Q", title=x_title, scale=alt.Scale(zero=False)))
    dots = base.mark_point(filled=True, size=90).encode(
        y=alt.Y("accuracy:Q", title=y_title, scale=alt.Scale(domain=[0, 100])),
        color=alt.Color("method:N", scale=METHOD_COLOURS, title="method"),
        shape=alt.Shape("feasible:N", title="meets dev constraints", scale=FEASIBLE_SHAPES),
        tooltip=["trial", "method", "params", alt.Tooltip("cost shown:N", title="cost"),
                 alt.Tooltip("accuracy:Q", format=".1f"), "feasible"],
    )
    bars = base.mark_rule(opacity=0.5).encode(y="low:Q", y2="high:Q", color=alt.Color("method:N", scale=METHOD_COLOURS))
    front = alt.Chart(points[points["pareto"]].sort_values("cost")).mark_line(
        interpolate="step-after", strokeDash=[4, 3], color="black").encode(x="cost:Q", y="accuracy:Q")
    return (bars + front + dots).properties(height=360)


def history(frame: pd.DataFrame, y_title: str) -> alt.Chart:
    """The sweep's optimisation history: each complete trial's dev objective and the best feasible value so far."""
    base = alt.Chart(frame).encode(x=alt.X("trial:Q", title="Optuna trial number", axis=alt.Axis(tickMinStep=1)))
    dots = base.mark_point(filled=True, size=70).encode(
        y=alt.Y("value:Q", title=y_title, axis=alt.Axis(format=".1f")),
        color=alt.Color("method:N", scale=METHOD_COLOURS),
        shape=alt.Shape("feasible:N", title="feasible", scale=FEASIBLE_SHAPES),
        tooltip=["trial", "method", alt.Tooltip("value:Q", format=".1f"), "feasible"])
    best = base.mark_line(interpolate="step-after", color="black").encode(y="best feasible so far:Q")
    return (best + dots).properties(height=300)


def importance(values: dict[str, float]) -> alt.Chart:
    frame = pd.DataFrame({"parameter": list(values), "importance": list(values.values())})
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("importance:Q", title="importance (fANOVA, share of variance)", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("parameter:N", sort="-x", title=None), tooltip=["parameter", alt.Tooltip("importance:Q", format=".3f")],
    ).properties(height=70 + 36 * len(frame))  # the height includes the x axis and its title


def curve(points: Sequence[tuple[int, float]], y_title: str, percent: bool = False) -> alt.Chart:
    """A training curve from (step, value) pairs (`TrainingSummary.loss_curve` or `dev_curve`)."""
    frame = pd.DataFrame(points, columns=["step", "value"])
    axis = alt.Axis()
    if percent:
        frame["value"] = frame["value"] * 100
        axis = alt.Axis(format=".1f")
    return alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("step:Q", title="training step"),
        y=alt.Y("value:Q", title=y_title, scale=alt.Scale(zero=False), axis=axis),
        tooltip=["step", alt.Tooltip("value:Q", format=".3f")],
    ).properties(height=260)


def confusion(matrix: Mapping[str, Mapping[str, int]]) -> alt.Chart:
    """Counts of (true, predicted) pairs; the diagonal is right, `(invalid)` names no label."""
    frame = pd.DataFrame([{"true": t, "predicted": p, "count": c} for t, row in matrix.items() for p, c in row.items()])
    step = 36 if max(frame["true"].nunique(), frame["predicted"].nunique()) <= 20 else 12
    return alt.Chart(frame).mark_rect().encode(
        x=alt.X("predicted:N", sort="ascending"), y=alt.Y("true:N", sort="ascending"),
        color=alt.Color("count:Q", scale=alt.Scale(scheme="blues")), tooltip=["true", "predicted", "count"],
    ).properties(height=alt.Step(step), width=alt.Step(step))


def learning_curve(frame: pd.DataFrame) -> alt.Chart:
    """Accuracy by number of training examples with 95% intervals: would more labelled data pay?"""
    base = alt.Chart(frame).encode(x=alt.X("train examples:Q", scale=alt.Scale(type="log")),
                                   color=alt.Color("split:N"))
    return (base.mark_line(point=True).encode(y=alt.Y("accuracy:Q", title="task accuracy (%)"),
                                              tooltip=["train examples", "split", "accuracy"])
            + base.mark_rule().encode(y="low:Q", y2="high:Q")).properties(height=300)


def cumulative(frame: pd.DataFrame, months: float | None) -> alt.Chart:
    """Cumulative cost by month of both options over the frame's months (the horizon). The break-even month is a
    labelled rule when it falls inside; beyond the chart, a title at its right edge says where it is."""
    options = list(dict.fromkeys(frame["option"]))  # fine-tuned first, then the baseline
    last = float(frame["month"].max())
    lines = alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=20)).encode(
        x=alt.X("month:Q", title="months in production", scale=alt.Scale(domain=[0, last], nice=False)),
        y=alt.Y("usd:Q", title="cumulative cost (USD)"),
        color=alt.Color("option:N", title=None, legend=alt.Legend(orient="top"),
                        scale=alt.Scale(domain=options, range=["#1f77b4", "#ff7f0e"])),
        tooltip=["option", "month", alt.Tooltip("cost:N", title="cumulative cost")],
    )
    if months is None:
        return lines.properties(height=340)
    if months <= last:
        mark = pd.DataFrame({"month": [months], "label": [f"break-even: {duration(months)}"]})  # not "0.0 months"
        rule = alt.Chart(mark).mark_rule(color="black", strokeDash=[5, 4]).encode(x="month:Q")
        text = alt.Chart(mark).mark_text(align="left", dx=5, fontWeight="bold").encode(
            x="month:Q", y=alt.value(12), text="label")
        return (lines + rule + text).properties(height=340)
    beyond = f"break-even at month {months:,.1f}, beyond the chart →"  # named at the right edge, above the lines
    return lines.properties(height=340, title=alt.TitleParams(beyond, anchor="end", fontSize=13))


def tornado(frame: pd.DataFrame, months: float | None) -> alt.Chart:
    """Months to payback with each assumption at its low and high end; widest swing on top."""
    order = list(dict.fromkeys(frame["assumption"]))
    bars = alt.Chart(frame).mark_bar(opacity=0.8).encode(
        y=alt.Y("assumption:N", sort=order, title=None, axis=alt.Axis(labelLimit=260)),
        x=alt.X("months:Q", title="months to payback"),
        x2=alt.X2("centre:Q"), color=alt.Color("end:N", title="assumption at", scale=alt.Scale(
            domain=["low", "high"], range=["#4c78a8", "#f58518"])),
        tooltip=["assumption", "end", "value", "label"],
    ).transform_calculate(centre=str(months or 0))
    labels = alt.Chart(frame).mark_text(dx=4, align="left").encode(
        y=alt.Y("assumption:N", sort=order), x="months:Q", text="label")
    return (bars + labels).properties(height=40 + 36 * len(order))
