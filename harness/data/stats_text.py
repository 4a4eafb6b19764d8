"""`harness suite stats` for a reader: one row per split, then the labels (or JSON keys) worth a look, a screen long
whatever the label set. `suite_stats` keeps every count, for `--format json`."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from harness.core.text import display_width
from harness.data.suite_labels import label_variants_text
from harness.data.suites import Suite, show_path, suite_stats

SHOWN = 5
"""Commonest and rarest labels (or keys) listed; `--format json` has every one."""


def stats_text(suite: Suite, shown: int = SHOWN, named: str | None = None) -> str:
    """The suite's splits as a table, then its labels or keys: commonest and rarest with their counts in every
    split, and the labels a split lacks. `named` is how the user named the suite, for the closing command."""
    stats = suite_stats(suite)
    contract = suite.contract
    what = {"label": f"label contract, {len(contract.labels):,} labels", "json": "JSON contract",
            "text": "text contract"}[contract.kind]
    lines = [f"suite {suite.name} {suite.version} ({show_path(suite.path)}): {what}; lengths are min / mean / max, "
             "in characters unless a column says words", ""]
    lines += _table(_header(contract.kind), [_split_row(split, entry, contract.kind) for split, entry in stats.items()])
    if contract.kind == "label":
        lines += _label_lines(stats, contract.labels, shown)
    elif contract.kind == "json":
        lines += _ranked("keys", {k for entry in stats.values() for k in entry["keys"]}, stats, "keys", shown)
    lines.append("")
    lines.append(f"every count: harness suite stats {shlex.quote(named or suite.name)} --format json")
    return "\n".join(lines)


def _header(kind: str) -> list[str]:
    extra = {"label": ["labels present"], "json": ["empty answers {}"],
             "text": ["answer words", "distinct answers", "worked-step words"]}[kind]
    return ["split", "examples", "input", "answer", *extra]


def _split_row(split: str, entry: dict[str, Any], kind: str) -> list[str]:
    row = [split, f"{entry['n']:,}", _span(entry["input_chars"]), _span(entry["target_chars"])]
    if kind == "label":
        present = len(entry["labels"]) - len(entry["labels_missing"])
        missing = f" ({len(entry['labels_missing']):,} missing)" if entry["labels_missing"] else ""
        return [*row, f"{present:,} of {len(entry['labels']):,}{missing}"]
    if kind == "json":
        return [*row, f"{entry['empty_objects']:,}"]
    steps = _span(entry["rationale_words"]) if "rationale_words" in entry else "-"
    return [*row, _span(entry["answer_words"]), f"{entry['distinct_answers']:,}", steps]


def _span(lengths: dict[str, float]) -> str:
    return f"{lengths['min']:,} / {lengths['mean']:,} / {lengths['max']:,}"


def _label_lines(stats: dict[str, dict[str, Any]], labels: Sequence[str], shown: int) -> list[str]:
    lines = _ranked("labels", set(labels), stats, "labels", shown)
    variants = label_variants_text({label: sum(entry["labels"].get(label, 0) for entry in stats.values())
                                    for label in labels})
    if variants:
        lines += ["", f"warning: labels that differ only in hyphens and underscores, case and spacing, a plural s, or "
                      f"in how a number is written (examples in all splits): {variants}. If each group is one label, "
                      f"write it one way in the splits and in suite.yaml's `output.labels`, and bump `version`."]
    for split, entry in stats.items():
        missing = entry["labels_missing"]
        if missing:
            listed = ", ".join(missing[:shown * 2]) + (f" and {len(missing) - shown * 2:,} more"
                                                       if len(missing) > shown * 2 else "")
            lines += ["", f"labels with no {split} example ({len(missing):,}): {listed}"]
    return lines


def _ranked(noun: str, names: set[str], stats: dict[str, dict[str, Any]], field: str, shown: int) -> list[str]:
    """The commonest and the rarest `names` by their examples in all splits, each with its count per split."""
    splits = list(stats)

    def count(name: str, split: str) -> int:
        return stats[split][field].get(name, 0)

    totals = {name: sum(count(name, s) for s in splits) for name in names}
    ordered = sorted(names, key=lambda name: (-totals[name], name))
    if not ordered:
        return []
    header = ["", *splits, "total"]

    def rows(chosen: Sequence[str]) -> list[list[str]]:
        return [[name, *(f"{count(name, s):,}" for s in splits), f"{sum(count(name, s) for s in splits):,}"]
                for name in chosen]

    if len(ordered) <= 2 * shown:
        return ["", f"{noun} (examples per split), commonest first:", *_table(header, rows(ordered), indent="  ")]
    rarest = sorted(names, key=lambda name: (totals[name], name))[:shown]
    tied = sum(1 for name in names if totals[name] <= totals[rarest[-1]])
    more = (f" ({tied:,} {noun} have {totals[rarest[-1]]:,} examples or fewer in all; --format json lists them)"
            if tied > shown else "")
    return ["", f"commonest {shown} of {len(ordered):,} {noun} (examples per split):",
            *_table(header, rows(ordered[:shown]), indent="  "),
            "", f"rarest {shown} {noun}{more}:", *_table(header, rows(rarest), indent="  ")]


def _table(header: list[str], rows: list[list[str]], indent: str = "") -> list[str]:
    """Left-aligned first column, right-aligned numbers, two spaces between columns."""
    widths = [max(display_width(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        pads = [" " * (width - display_width(cell)) for cell, width in zip(row, widths, strict=True)]
        cells = [row[0] + pads[0], *(pad + cell for pad, cell in zip(pads[1:], row[1:], strict=True))]
        return indent + "  ".join(cells).rstrip()

    return [line(header), *(line(row) for row in rows)]
