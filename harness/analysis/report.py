"""What a sweep found, in words and tables: the ranking, and whether fine-tuning beat prompting.

Trials are ranked on dev (feasible first); the verdict compares the best of each side, both chosen on dev,
on the same test examples with a paired bootstrap, so a difference that is noise reads as noise.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

from rich.table import Table

from harness.evaluation.stats import Metric, paired_bootstrap_diff
from harness.store.database import Store
from harness.sweep.retention import rank_key

CORE = ("task_accuracy", "format_compliance", "hallucination_rate", "regression_delta")


def ranked(trials: list[dict]) -> list[dict]:
    """Finished trials by dev objective, feasible first; failed and running ones last, in order."""
    done = [t for t in trials if t["status"] in ("complete", "pruned")]
    rest = [t for t in trials if t["status"] not in ("complete", "pruned")]
    return sorted(done, key=lambda t: (t["status"] == "complete", *rank_key(t)), reverse=True) + rest


def fmt_metric(metric: dict | None, signed: bool = False) -> str:
    """`62.0% [52.2, 70.9] n=100`, or `-` when not measured."""
    if not metric or metric.get("value") is None:
        return "-"
    return f"{_cell(metric, signed, unit='%')} n={metric.get('n', 0)}"


SHORT_NAMES = {"learning_rate": "lr", "lora_alpha": "alpha", "lora_dropout": "dropout", "target_modules": "targets"}


def params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{SHORT_NAMES.get(k, k)}={v:.2g}" if isinstance(v, float) else f"{SHORT_NAMES.get(k, k)}={v}"
                    for k, v in params.items() if k != "method")


def ranking_table(trials: list[dict]) -> Table:
    """Percentages with their 95% interval; n per column in the header (hallucination: of compliant outputs)."""
    ordered = ranked(trials)
    n_dev, n_test = (_n(ordered, split) for split in ("dev", "test"))
    table = Table(title="Trials ranked on dev (feasible first). Test is reported, never used to choose. "
                        "Values in %, [95% interval].")
    for column in ("rank", "trial", "method", "params", f"dev acc (n={n_dev})", f"test acc (n={n_test})",
                   "test format", "test halluc. (of compliant)", "regression Δ", "train s", "status"):
        table.add_column(column, overflow="fold")
    for rank, t in enumerate(ordered, start=1):
        dev, test = t["metrics"].get("dev", {}), t["metrics"].get("test", {})
        regression = test.get("regression_delta") or dev.get("regression_delta")
        status = t["status"] if t["status"] != "complete" else ("ok" if t["feasible"] else "infeasible")
        if t["failure_reason"]:
            status += f": {t['failure_reason']}"
        hallucination = test.get("hallucination_rate")
        table.add_row(
            str(rank), t["id"], t["method"], params_text(t["params"]), _cell(dev.get("task_accuracy")),
            _cell(test.get("task_accuracy")), _cell(test.get("format_compliance")),
            _cell(hallucination) + (f" n={hallucination['n']}" if hallucination else ""),
            "not trained" if not t["trained"] else _cell(regression, signed=True),
            f"{t['train_seconds']:.0f}" if t["train_seconds"] else "-", status,
        )
    return table


def _cell(metric: dict | None, signed: bool = False, unit: str = "") -> str:
    """`62.0 [52.2, 70.9]` in percent (tables say so in their title), or `-` when not measured."""
    if not metric or metric.get("value") is None:
        return "-"
    sign = "+" if signed else ""
    text = f"{metric['value'] * 100:{sign}.1f}{unit}"
    if metric.get("low") is not None and metric.get("high") is not None:
        text += f" [{metric['low'] * 100:{sign}.1f}, {metric['high'] * 100:{sign}.1f}]"
    return text


def _n(trials: list[dict], split: str) -> int | str:
    counts = {t["metrics"].get(split, {}).get("task_accuracy", {}).get("n") for t in trials} - {None}
    return counts.pop() if len(counts) == 1 else "varies"


@dataclass(frozen=True)
class Verdict:
    text: str
    difference: Metric | None = None
    finetuned: str | None = None
    prompting: str | None = None


def verdict(store: Store, trials: list[dict]) -> Verdict:
    """Did fine-tuning beat prompting? Best of each side chosen on dev, compared paired on test."""
    complete = [t for t in trials if t["status"] == "complete"]
    tuned = _best([t for t in complete if t["trained"]])
    prompted = _best([t for t in complete if not t["trained"]])
    if tuned is None or prompted is None:
        missing = "fine-tuned" if tuned is None else "prompting"
        return Verdict(f"No verdict yet: the study has no completed {missing} trial.")
    a, b = _paired_correct(store, tuned["id"], prompted["id"])
    if not a:
        return Verdict("No verdict: the two best trials share no test examples.")
    diff = paired_bootstrap_diff(a, b, seed=0)
    acc_t = tuned["metrics"]["test"]["task_accuracy"]
    acc_p = prompted["metrics"]["test"]["task_accuracy"]
    evidence = (
        f"{tuned['method']} {tuned['id']} scored {fmt_metric(acc_t)} and prompting {prompted['id']} "
        f"({params_text(prompted['params'])}) {fmt_metric(acc_p)} test task accuracy; difference "
        f"{diff.value * 100:+.1f} points, 95% CI [{diff.low * 100:+.1f}, {diff.high * 100:+.1f}] "
        f"(paired bootstrap over the same {diff.n} test examples; both trials chosen on dev)."
    )
    caveat = "" if tuned["feasible"] else " Caution: the fine-tuned trial breaks a dev constraint."
    if diff.low > 0:
        head = "YES - fine-tuning beat prompting."
    elif diff.high < 0:
        head = "NO - prompting beat fine-tuning."
    else:
        head = "NOT SHOWN - the difference is within noise (the interval includes 0)."
    return Verdict(f"{head} {evidence}{caveat}", diff, tuned["id"], prompted["id"])


def trials_json(trials: list[dict]) -> str:
    """`harness trials --format json`: test metrics under `metrics`, dev metrics under `dev_metrics`."""
    rows = []
    for t in trials:
        rows.append({
            "id": t["id"], "study": t["study"], "method": t["method"], "params": t["params"],
            "status": t["status"], "failure_reason": t["failure_reason"], "trained": t["trained"],
            "feasible": t["feasible"], "objective": t["objective"],
            "metrics": _core(t["metrics"].get("test", {})), "dev_metrics": _core(t["metrics"].get("dev", {})),
        })
    return json.dumps(rows, indent=2)


def trials_csv(trials: list[dict]) -> str:
    out = io.StringIO()
    columns = ["id", "study", "method", "params", "status", "failure_reason", "feasible"]
    columns += [f"{split}_{name}_{part}" for split in ("dev", "test") for name in CORE
                for part in ("value", "low", "high", "n")]
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    for t in trials:
        row = {k: t[k] for k in columns[:7]}
        row["params"] = json.dumps(t["params"])
        for split in ("dev", "test"):
            for name, metric in _core(t["metrics"].get(split, {})).items():
                for part, value in metric.items():
                    row[f"{split}_{name}_{part}"] = value
        writer.writerow(row)
    return out.getvalue()


def _core(metrics: dict[str, dict]) -> dict[str, dict]:
    empty = {"value": None, "low": None, "high": None, "n": 0}
    return {name: metrics.get(name, empty) for name in CORE}


def _best(trials: list[dict]) -> dict | None:
    return max(trials, key=rank_key) if trials else None


def _paired_correct(store: Store, first: str, second: str) -> tuple[list[float], list[float]]:
    def correct(trial_id: str) -> dict[str, float]:
        trial = store.get_trial(trial_id)
        return {e["example_id"]: float(e["scores"].get("task_accuracy") or 0.0)
                for e in trial["examples"] if e["split"] == "test"}

    a, b = correct(first), correct(second)
    shared = sorted(set(a) & set(b))
    return [a[i] for i in shared], [b[i] for i in shared]


def trial_detail(trial: dict, failures: int = 5) -> str:
    """`harness show`: config, status, timings, every metric with its interval, and failed examples."""
    lines = [
        f"trial {trial['id']}  method {trial['method']}  status {trial['status']}"
        + (f" ({trial['failure_reason']})" if trial["failure_reason"] else ""),
        f"params: {json.dumps(trial['params'])}",
        f"device {trial['device']}  train {trial['train_seconds'] or 0:.1f} s  eval {trial['eval_seconds'] or 0:.1f} s"
        f"  peak memory {trial['peak_memory_mb'] or 0:.0f} MiB  feasible {trial['feasible']}",
        f"artifact: {trial['artifact_path'] or ('not trained' if not trial['trained'] else 'not kept (retention)')}",
    ]
    details = trial.get("details") or {}
    data = details.get("data", {})
    if data:
        lines.append(f"suite {data.get('suite')} {data.get('suite_version')}  sizes {data.get('sizes')}")
    model = details.get("model", {})
    if model:
        lines.append(f"model {model.get('name')} sha256 {str(model.get('sha256'))[:16]}  ({model.get('note')})")
    training = details.get("training")
    if training:
        curve = training.get("loss_curve") or []
        loss = f"loss {curve[0][1]:.3f} -> {curve[-1][1]:.3f}" if curve else "no loss logged"
        lines.append(f"training: {training['steps']} steps, stopped by {training['stopped_by']}, {loss}")
    for split, metrics in trial["metrics"].items():
        lines.append(f"{split}:")
        lines += [f"  {name:<20} {fmt_metric(m, signed=name == 'regression_delta')}"
                  for name, m in sorted(metrics.items())]
    lines += _label_lines((details.get("labels") or {}).get("test"))
    wrong = [e for e in trial.get("examples", []) if e["split"] == "test" and not e["scores"].get("task_accuracy")]
    if wrong:
        lines.append(f"first {min(failures, len(wrong))} of {len(wrong)} wrong test answers:")
        for e in wrong[:failures]:
            lines += [f"  {e['example_id']}: {e['input'][:80]!r}", f"    expected {e['target']}",
                      f"    got      {e['output']!r}"]
    return "\n".join(lines)


def seed_spread_table(trials: list[dict], repeats: list[dict]) -> Table | None:
    """Each re-run configuration with its original: mean and range of accuracy across seeds."""
    by_id = {t["id"]: t for t in trials}
    groups: dict[str, list[dict]] = {}
    for r in repeats:
        if r["status"] == "complete" and r["params"].get("source_trial") in by_id:
            groups.setdefault(r["params"]["source_trial"], []).append(r)
    if not groups:
        return None
    table = Table(title="Repeated seeds: does the ranking survive another draw? Accuracy in %, mean [min, max].")
    for column in ("trial", "method", "params", "seeds", "dev accuracy", "test accuracy"):
        table.add_column(column, overflow="fold")
    for source_id, runs in groups.items():
        source = by_id[source_id]
        runs = [source, *runs]
        seeds = ", ".join(str(r["params"].get("seed", "orig")) for r in runs)
        table.add_row(source_id, source["method"], params_text(source["params"]), seeds,
                      _spread(runs, "dev"), _spread(runs, "test"))
    return table


def learning_curve_table(curve: list[dict]) -> Table | None:
    """Accuracy against the number of training examples, with intervals (same config, nested subsets)."""
    done = sorted((t for t in curve if t["status"] == "complete"), key=lambda t: t["params"]["train_examples"])
    if not done:
        return None
    source = done[0]["params"]["source_trial"]
    table = Table(title=f"Learning curve of {source}: accuracy in % [95% interval] by training examples.")
    for column in ("train examples", "dev accuracy", "test accuracy", "train s"):
        table.add_column(column)
    for t in done:
        table.add_row(str(t["params"]["train_examples"]), _cell(t["metrics"]["dev"].get("task_accuracy")),
                      _cell(t["metrics"].get("test", {}).get("task_accuracy")), f"{t['train_seconds'] or 0:.0f}")
    return table


def _spread(runs: list[dict], split: str) -> str:
    values = [r["metrics"].get(split, {}).get("task_accuracy", {}).get("value") for r in runs]
    values = [v * 100 for v in values if v is not None]
    if not values:
        return "-"
    return f"{sum(values) / len(values):.1f} [{min(values):.1f}, {max(values):.1f}]"


def _label_lines(report: dict | None, worst: int = 5) -> list[str]:
    """The weakest labels and the commonest confusions on test; the full table is in details.labels."""
    if not report:
        return []
    scored = [(v["f1"], name, v) for name, v in report["labels"].items() if v["support"]]
    scored.sort(key=lambda item: (item[0] is not None, item[0] or 0.0))
    lines = [f"per label (test, macro-F1 {report['macro_f1'] * 100:.1f} over {report['macro_labels']} labels); "
             f"weakest {min(worst, len(scored))}:"]
    for f1, name, v in scored[:worst]:
        lines.append(f"  {name:<40} F1 {'-' if f1 is None else f'{f1 * 100:.1f}'}  support {v['support']}")
    confusions = sorted(((count, true, pred) for true, row in report["confusion"].items()
                         for pred, count in row.items() if pred != true), reverse=True)[:worst]
    if confusions:
        lines.append("commonest confusions (true -> predicted):")
        lines += [f"  {count:>3} x {true} -> {pred}" for count, true, pred in confusions]
    return lines


def payback_text(result) -> str:
    """`harness payback`: the answer first, then every number behind it with its unit and source."""
    head = (f"Payback of {result.candidate} against {result.baseline} at {result.volume:,.0f} queries a month: "
            + (f"PAYS BACK in {result.months_to_payback:.1f} months." if result.pays_back
               else "NO PAYBACK FIGURE."))
    lines = [head, f"  why: {result.reason}", f"  quality: {result.quality.reason}",
             f"  cost per query: candidate ${result.candidate_usd_per_query:.3g}, "
             f"baseline ${result.baseline_usd_per_query:.3g} (saves ${result.savings_per_query_usd:.3g})",
             f"  monthly savings ${result.monthly_savings_usd:,.2f}; one-time ${result.one_time_usd:,.2f} ("
             + ", ".join(f"{k} ${v:,.2f}" for k, v in result.one_time_breakdown.items()) + ")"]
    if result.break_even_volume is not None:
        lines.append(f"  break-even: {result.break_even_volume:,.0f} queries a month pay back within "
                     f"{result.horizon_months:g} months")
    sensitivity = result.sensitivity
    if sensitivity.tornado:
        lines.append("  sensitivity (months to payback at the low / high end of each assumption's range):")
        for bar in sensitivity.tornado[:6]:
            lines.append(f"    {bar.assumption:<28} {_months(bar.months_at_low):>8} / {_months(bar.months_at_high):<8}"
                         f" ({bar.low:g} .. {bar.high:g} {bar.unit})")
    lines.append(f"  at the low end of the accuracy interval: {sensitivity.accuracy_low_end.reason}"
                 + (" The decision flips." if sensitivity.decision_flips else ""))
    lines.append("assumptions:")
    for name, item in sorted(result.assumptions.items()):
        value = f"{item['value']:.6g}" if isinstance(item["value"], float) else str(item["value"])
        lines.append(f"  {name:<40} {value:>14} {item['unit']:<30} {item['source']}")
    return "\n".join(lines)


def _months(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}"
