"""Per-label view of a label suite: which intents a trial gets right, which it confuses, which it never says.

One accuracy number over 77 intents hides a model that never predicts a rare label, or that folds two labels
into one. This report splits it up: precision, recall, F1 and support per label, macro-F1, and the confusion
matrix, as a typed `LabelReport` that is stored as JSON next to the trial and can be diffed between trials.

Conventions (the same as scikit-learn's `zero_division=0`):
- The predicted label is `parsed.value[contract.key]`, matched onto the label set after folding case and
  whitespace (as task_accuracy does). An output with no parsable value, a non-string value, or a label outside
  the set is predicted as INVALID: it counts against the true label's recall but is no label's false positive.
- precision is None for a label never predicted (tp + fp = 0); recall is None for a label with no support.
  F1 = 2tp / (2tp + fp + fn), None only when that denominator is 0 (never predicted, never true).
- macro_f1 is the mean F1 over labels with support > 0. A supported label that is never predicted therefore
  counts as F1 = 0 (precision undefined, treated as 0). This equals
  `f1_score(y_true, y_pred, labels=<labels with support>, average="macro", zero_division=0)`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

import numpy as np

from harness.core.label_report import INVALID, LabelReport, LabelRow
from harness.core.metric import Metric
from harness.core.text import fold
from harness.data.contract import OutputContract, label_lookup, parse_output, parse_target
from harness.evaluation.scorers.base import ScoredCase
from harness.evaluation.stats import at_a_bound


def predicted_label(case: ScoredCase, contract: OutputContract) -> str:
    """The label from the set that the output names (folded match), or INVALID."""
    return _label_named(case.parsed.value, contract)


def _label_named(value: object, contract: OutputContract) -> str:
    """The label of the set a parsed output's value names under the contract's key (folded match), or INVALID."""
    got = value.get(contract.key) if isinstance(value, dict) else None
    if not isinstance(got, str):
        return INVALID
    return label_lookup(contract.labels).get(fold(got), INVALID)


def label_report(cases: Sequence[ScoredCase], contract: OutputContract) -> LabelReport:
    """Per-label precision/recall/F1/support, macro-F1 and a sparse confusion matrix (see module docstring).

    Every label of the contract is listed, without an F1 interval (`with_f1_intervals` adds them); labels and
    confusion rows are sorted (INVALID last in a row), as `LabelReport.to_json` stores them.
    """
    if contract.kind != "label":
        raise ValueError(f"label_report needs a label contract, got kind {contract.kind!r}")
    by_fold = label_lookup(contract.labels)
    pairs = []
    for case in cases:
        want = case.target.get(contract.key)
        true = by_fold.get(fold(want)) if isinstance(want, str) else None
        if true is None:  # parse_target guarantees a label from the set; anything else is a caller bug
            raise ValueError(f"{case.example.id}: reference {want!r} is not one of the contract's labels")
        pairs.append((true, predicted_label(case, contract)))
    confusion = Counter(pairs)
    support = Counter(t for t, _ in pairs)
    predicted = Counter(p for _, p in pairs)

    per_label: dict[str, LabelRow] = {}
    for label in sorted(contract.labels):
        tp = confusion[(label, label)]
        fp, fn = predicted[label] - tp, support[label] - tp
        per_label[label] = LabelRow(
            precision=tp / (tp + fp) if tp + fp else None,
            recall=tp / (tp + fn) if tp + fn else None,
            f1=2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else None,
            support=support[label],
            predicted=predicted[label],
        )
    scored = [row.f1 for row in per_label.values() if row.support > 0]
    matrix: dict[str, dict[str, int]] = {}
    for (true, pred), count in sorted(confusion.items(), key=lambda kv: (kv[0][0], kv[0][1] == INVALID, kv[0][1])):
        matrix.setdefault(true, {})[pred] = count
    return LabelReport(
        n=len(pairs),
        invalid=predicted[INVALID],
        macro_f1=sum(scored) / len(scored) if scored else None,
        macro_labels=len(scored),
        labels=per_label,
        confusion=matrix,
    )


def with_f1_intervals(report: LabelReport, intervals: Mapping[str, tuple[float, float]]) -> LabelReport:
    """The report with each label's F1 interval (from `label_bootstrap`) beside its F1; a label without one keeps
    None. A new report rather than an update, so a report once made never changes under its readers."""
    rows = {name: replace(row, f1_low=intervals[name][0], f1_high=intervals[name][1]) if name in intervals else row
            for name, row in report.labels.items()}
    return replace(report, labels=rows)


def macro_f1_metric(cases: Sequence[ScoredCase], contract: OutputContract, seed: int = 0,
                    resamples: int = 1000, report: LabelReport | None = None) -> Metric:
    """Macro-F1 with a seeded bootstrap 95% interval over examples (labels re-counted per draw, `_centred`).

    Pass the `label_report` of the same cases when you already have it, so it is not computed twice."""
    return label_bootstrap(cases, contract, seed, resamples, report)[0]


def label_bootstrap(cases: Sequence[ScoredCase], contract: OutputContract, seed: int = 0, resamples: int = 1000,
                    report: LabelReport | None = None) -> tuple[Metric, dict[str, tuple[float, float]]]:
    """Macro-F1 as a Metric, and each label's F1 interval, from one seeded percentile bootstrap over examples,
    stratified by true label.

    A label's F1 in a draw that neither holds nor predicts it is undefined and left out of that label's interval.
    Where a label's every draw gives the same F1 of 0 or 1 (all its examples right, say), the interval is the
    Wilson interval of the examples that decide its F1 (true or predicted as it), as a rate of that many gets:
    three right of three is not certainty. Labels with no defined F1 get no interval."""
    if report is None:
        report = label_report(cases, contract)
    if not report.n or report.macro_f1 is None:
        return Metric(report.macro_f1, None, None, report.n), {}
    names = sorted(contract.labels)
    index = {name: i for i, name in enumerate(names)}  # INVALID gets len(names): nobody's true label
    by_fold = label_lookup(contract.labels)
    true = np.array([index[by_fold[fold(c.target[contract.key])]] for c in cases])
    pred = np.array([index.get(predicted_label(c, contract), len(names)) for c in cases])
    draws = _stratified_draws(true, seed, resamples)
    support, predicted, hits = _draw_counts(true, pred, draws, len(names))
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * hits / (support + predicted)  # nan where the label is neither true nor predicted in the draw
    macro = _macro(support, predicted, hits)
    low, high = at_a_bound(report.macro_f1, *_centred(macro, report.macro_f1), report.n)
    if report.macro_f1 not in (0.0, 1.0) and too_few_a_label(row.support for row in report.labels.values()):
        low = high = None  # its draws vary too little to hold the truth 95 times in 100 (at 0 or 1: Wilson's n of n)
    intervals = {}
    for name, column in zip(names, f1.T, strict=True):
        row, defined = report.labels[name], column[~np.isnan(column)]
        if row.f1 is None or not defined.size:
            continue
        decided = row.support + row.predicted - report.correct(name)
        span = at_a_bound(row.f1, *map(float, np.percentile(defined, [2.5, 97.5])), decided)
        intervals[name] = (float(span[0]), float(span[1]))
    return Metric(report.macro_f1, None if low is None else float(low), None if high is None else float(high),
                  report.n), intervals


MIN_MEDIAN_SUPPORT, MAX_SHARE_OF_FEW = 4, 0.25
"""Macro-F1's bootstrap is given where the median test label has 4 examples or more and at most a quarter of the
labels have 1 or 2. A label of one example is the same example in every draw, so its F1 never varies there, though
another test set would score it anew. In seeded simulations (a classifier with each label's recall in [40%, 95%])
the interval held the true macro-F1 in 0 of 40 test sets of 77 labels of 1 example, 30 of 40 with 2, 33 of 40 with
3, 31 with 28 labels of 1 and 28 of 5, and 36 to 40 of 40 with 4 or more a label, or a quarter of the labels at 1."""


def too_few_a_label(supports: Iterable[int]) -> str | None:
    """Why macro-F1 gets no bootstrap interval or paired test where the test labels have `supports` examples each
    (too few a label: `MIN_MEDIAN_SUPPORT`), or None."""
    supports = sorted(count for count in supports if count)
    if not supports:
        return None
    few = sum(1 for count in supports if count <= 2)
    median = float(np.median(supports))
    if median >= MIN_MEDIAN_SUPPORT and few <= MAX_SHARE_OF_FEW * len(supports):
        return None
    return (f"too few test examples a label for macro-F1's bootstrap: {few} of {len(supports)} labels have 1 or 2, "
            f"the median {median:g} (it needs {MIN_MEDIAN_SUPPORT} or more, and at most a quarter at 1 or 2), so its "
            "draws vary too little to hold a 95% interval; more test examples a label (data.test_limit) give one")


def _stratified_draws(true: np.ndarray, seed: int, resamples: int) -> np.ndarray:
    """(resamples, width) example indices: in each draw, how many examples of each true label is drawn as the plain
    bootstrap draws it (multinomial on the test set's label shares), but at least one of each, then that many within
    the label. Index `true.size` pads the rows to one width: `_draw_counts` counts it nowhere.

    At least one of each: drawn over all examples, a draw that missed the one `legal` ticket averaged macro-F1 over
    the other labels only, and a model wrong on it read 0.664 [0.655, 1.000]. Counts that vary: drawn with each
    label's count fixed, a model that gave one label for every input scored the same in every draw, and read
    21.6 [21.6, 21.6] on 100 examples."""
    rng = np.random.default_rng(seed)
    labels, sizes = np.unique(true, return_counts=True)
    groups = [np.flatnonzero(true == label) for label in labels]
    counts = rng.multinomial(true.size, sizes / true.size, size=resamples)
    while (short := (counts == 0).any(axis=1)).any():  # each label once at least, one from the draw's commonest
        rows = np.flatnonzero(short)
        counts[rows, counts[rows].argmax(axis=1)] -= 1
        counts[rows, (counts[rows] == 0).argmax(axis=1)] += 1
    columns = []
    for g, group in enumerate(groups):
        width = int(counts[:, g].max())
        drawn = group[rng.integers(0, group.size, size=(resamples, width))]
        drawn[np.arange(width)[None, :] >= counts[:, g][:, None]] = true.size  # past this draw's count: padding
        columns.append(drawn)
    return np.concatenate(columns, axis=1)


def _macro(support: np.ndarray, predicted: np.ndarray, hits: np.ndarray) -> np.ndarray:
    """Each draw's macro-F1 from its counts (`_draw_counts`): the mean F1 over labels with support, one never
    predicted counting 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(support > 0, 2 * hits / (support + predicted), 0.0)
    return f1.sum(axis=1) / (support > 0).sum(axis=1)


def _centred(draws: np.ndarray, estimate: float) -> tuple[float, float]:
    """The 95% percentile interval of macro-F1's draws, moved by what separates their median from the estimate.

    With few examples a label, resampling itself pulls macro-F1 down: a draw that repeats some of a label's examples
    and misses others scores it lower, though the estimate is close to unbiased (about -0.3 points with 200 labels of
    10 examples). The plain percentile interval then sits low and missed the true macro-F1 in 26 of 100 simulated
    test sets of 200 labels of 10 examples, and 91 of 100 with 500 labels of 4; moved, 6 and 16. Where labels have
    20 or more examples the move is a fraction of a point, and both held it 91 to 97 times in 100 (5 to 50 labels
    simulated; `tests/test_labels.py` checks 500 labels of 4 and 5 of 40)."""
    shift = estimate - float(np.median(draws))
    low, high = (float(v) + shift for v in np.percentile(draws, [2.5, 97.5]))
    return max(0.0, low), min(1.0, high)


_CHUNK_CELLS = 2_000_000
"""Resampled examples counted at once: the draws are made in one call (so the interval does not depend on this),
then counted a block of draws at a time, so memory stays near the draws themselves at any n."""


def _draw_counts(true: np.ndarray, pred: np.ndarray, draws: np.ndarray,
                 labels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per draw and label: support, times predicted, and hits (true and predicted), each (resamples, labels).
    Label index `labels` is INVALID: predicted, never true, and dropped from the counts."""
    resamples = draws.shape[0]
    support, predicted, hits = (np.empty((resamples, labels), dtype=np.int64) for _ in range(3))
    step = max(1, _CHUNK_CELLS // max(1, draws.shape[1]))
    true, pred = np.append(true, labels), np.append(pred, labels)  # the padding index (`_stratified_draws`): no label
    for start in range(0, resamples, step):
        block = draws[start:start + step]
        rows = slice(start, start + block.shape[0])
        t, p = true[block], pred[block]
        support[rows], predicted[rows] = _per_draw(t, labels), _per_draw(p, labels)
        hits[rows] = _per_draw(np.where(t == p, t, labels), labels)
    return support, predicted, hits


def _per_draw(drawn: np.ndarray, labels: int) -> np.ndarray:
    """How often each label (INVALID dropped) occurs in each row of `drawn`: one bincount for every row, row r
    counted at r * width + label."""
    width = labels + 1
    offset = np.arange(drawn.shape[0])[:, None] * width
    flat = np.bincount((drawn + offset).ravel(), minlength=drawn.shape[0] * width)
    return flat.reshape(drawn.shape[0], width)[:, :-1]


def answered_labels(examples: Sequence[tuple[str, str, str]], contract: OutputContract) -> dict[str, tuple[str, str]]:
    """{example id: (true label, predicted label or INVALID)} of stored (id, target, output) triples, parsed and
    matched as scoring does: what a paired comparison of macro-F1 resamples."""
    by_fold = label_lookup(contract.labels)
    return {example_id: (by_fold[fold(parse_target(target, contract)[contract.key])],
                         _label_named(parse_output(output, contract).value, contract))
            for example_id, target, output in examples}


def paired_macro_f1_draws(true: Sequence[str], a: Sequence[str], b: Sequence[str], seed: int = 0,
                          resamples: int = 2000) -> tuple[float, float, np.ndarray]:
    """Macro-F1 of answers `a` and of answers `b` to the same examples (true labels `true`), and A - B in each draw of
    one bootstrap over the examples, resampled within each true label as `label_bootstrap` does: the same draws for
    both, so what they share cancels."""
    names = sorted(set(true) | {label for label in (*a, *b) if label != INVALID})
    index = {name: i for i, name in enumerate(names)}
    t = np.array([index[label] for label in true])
    preds = [np.array([index.get(label, len(names)) for label in answers]) for answers in (a, b)]
    draws = _stratified_draws(t, seed, resamples)
    whole = np.arange(t.size)[None, :]

    def macro(pred: np.ndarray, drawn: np.ndarray) -> np.ndarray:
        return _macro(*_draw_counts(t, pred, drawn, len(names)))

    a_macro, b_macro = (float(macro(pred, whole)[0]) for pred in preds)
    return a_macro, b_macro, macro(preds[0], draws) - macro(preds[1], draws)
