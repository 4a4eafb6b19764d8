"""The Trial page's per-label section as tables: F1 with its interval and support per label, and the commonest
confusions when there are too many labels for a readable matrix.

Both read a trial's typed `LabelReport` (its `labels` rows and its `confusion` matrix).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import streamlit as st

from harness.core.label_report import LabelReport

CHART_MAX_LABELS = 40
"""Above this many labels the confusion chart's cells (12 px a label) are unreadable and it is hundreds of pixels
wide: the page lists the commonest off-diagonal pairs instead."""
TOP_PAIRS = 50
PER_LABEL_COLUMNS = ["label", "f1", "f1_low", "f1_high", "precision", "recall", "support", "predicted"]
PERCENT_COLUMNS = ("f1", "f1_low", "f1_high", "precision", "recall")


def _percent(value: Any) -> float | None:
    """A 0-1 share in % to one decimal; None where the report has none (a label never predicted has no precision)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value) * 100, 1)


def per_label_frame(report: LabelReport) -> pd.DataFrame:
    """One row per label, in %: F1 beside its 95% interval, then precision, recall, support (the label's n) and how
    often it was predicted. Commonest labels first, so the labels that carry the score lead; labels with no example
    in the split come last. Records before 2026-12-05 have no F1 interval: those columns are left out."""
    rows = [{"label": name, "f1": row.f1, "f1_low": row.f1_low, "f1_high": row.f1_high, "precision": row.precision,
             "recall": row.recall, "support": row.support, "predicted": row.predicted}
            for name, row in report.labels.items()]
    with_interval = any(row.f1_low is not None for row in report.labels.values())
    frame = pd.DataFrame(rows, columns=[c for c in PER_LABEL_COLUMNS
                                        if with_interval or c not in ("f1_low", "f1_high")])
    for column in PERCENT_COLUMNS:
        if column in frame.columns:
            frame[column] = [_percent(v) for v in frame[column]]
    frame = frame.sort_values(["support", "label"], ascending=[False, True], kind="stable")
    return frame.reset_index(drop=True)


def label_count(confusion: Mapping[str, Mapping[str, int]]) -> int:
    """How many distinct labels the confusion matrix has on either axis (`(invalid)` included)."""
    return len(set(confusion) | {p for row in confusion.values() for p in row})


def confusion_pairs_frame(confusion: Mapping[str, Mapping[str, int]], limit: int = TOP_PAIRS) -> pd.DataFrame:
    """The `limit` commonest wrong (true, predicted) pairs, each with its count out of the true label's examples in
    the split and that share in %. `(invalid)` as predicted means the output named no label."""
    pairs = []
    for true, row in confusion.items():
        n = sum(row.values())
        pairs += [(count, true, predicted, n) for predicted, count in row.items() if predicted != true and count]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))
    return pd.DataFrame([{"true": true, "predicted": predicted, "count": count, "of true label's n": n,
                          "share %": round(100 * count / n, 1)} for count, true, predicted, n in pairs[:limit]],
                        columns=["true", "predicted", "count", "of true label's n", "share %"])


def wrong_pairs(confusion: Mapping[str, Mapping[str, int]]) -> tuple[int, int]:
    """(distinct wrong pairs, wrong examples) in the matrix: what the top-pairs table is a part of."""
    counts = [c for true, row in confusion.items() for p, c in row.items() if p != true and c]
    return len(counts), sum(counts)


def per_label_columns() -> dict[str, Any]:
    """How the per-label table prints: every share with one decimal, so 0 and 49 read as 0.0 and 49.0 like the
    rest of the page."""
    titles = {"f1": "F1 %", "f1_low": "F1 low %", "f1_high": "F1 high %", "precision": "precision %",
              "recall": "recall %"}
    return {name: st.column_config.NumberColumn(title, format="%.1f") for name, title in titles.items()}
