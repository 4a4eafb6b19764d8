"""Build suites/ticket-triage from banking77 (PolyAI): 77-intent routing of bank customer messages.

Run from the repo root: `python suites/_build/ticket_triage.py [--source ../shared/datasets]`.
Cleaning exists because the harness refuses duplicates and train/test contamination: within-train duplicates
are dropped (first kept), test items whose text is also in train are dropped, and dev is carved from train
(stratified, seeded) because banking77 has no official validation split.
"""

from __future__ import annotations

import csv
import json
import random

from _common import SEED, dump_yaml, jsonl, normalize, parse_args, sha256, write_folder

NAME = "ticket-triage"
INSTRUCTION = (
    "You route customer-support messages for a bank. Read the customer's message and name its intent: the one "
    "category that best describes what the customer wants."
)
REPO_URL = "https://github.com/PolyAI-LDN/task-specific-datasets"
COMMIT = "57ec275d8078af65b7731c2a98be812d844a6d6b"
ATTRIBUTION = (
    'Casanueva, Temcinas, Gerz, Henderson, Vulic (2020), "Efficient Intent Detection with Dual Sentence '
    'Encoders", Proc. 2nd Workshop on NLP for ConvAI (arXiv:2003.04807). banking77 by PolyAI, CC BY 4.0.'
)
DEV_FRACTION = 0.1


def read(path):
    with path.open(encoding="utf-8", newline="") as f:
        return [(i, r["text"], r["category"]) for i, r in enumerate(csv.DictReader(f), start=1)]


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    src = args.source / "banking77"
    labels = sorted(json.loads((src / "categories.json").read_text(encoding="utf-8")))
    train_raw, test_raw = read(src / "train.csv"), read(src / "test.csv")
    stripped = sum(t != t.strip() for _, t, _ in train_raw + test_raw)

    train, first, train_dups = [], {}, []
    for row, text, cat in train_raw:
        key = normalize(text)
        if key in first:
            train_dups.append({"row": row, "text": text, "intent": cat, "same_as_row": first[key]})
            continue
        first[key] = row
        train.append((row, text.strip(), cat))

    test, seen, test_overlap, test_dups = [], {}, [], []
    for row, text, cat in test_raw:
        key = normalize(text)
        if key in first:
            test_overlap.append({"row": row, "text": text, "intent": cat, "train_row": first[key]})
        elif key in seen:
            test_dups.append({"row": row, "text": text, "intent": cat, "same_as_row": seen[key]})
        else:
            seen[key] = row
            test.append((row, text.strip(), cat))

    rng = random.Random(SEED)
    dev_rows = set()
    for label in labels:
        rows = [row for row, _, cat in train if cat == label]
        rng.shuffle(rows)
        dev_rows.update(rows[: round(len(rows) * DEV_FRACTION)])
    dev = [x for x in train if x[0] in dev_rows]
    train = [x for x in train if x[0] not in dev_rows]

    def rows(items):
        return [{"input": text, "output": {"intent": cat}} for _, text, cat in items]

    counts = {"train": len(train), "dev": len(dev), "test": len(test)}
    cleaning = {
        "dropped": {
            "train_duplicates": len(train_dups),
            "test_overlapping_train": len(test_overlap),
            "test_duplicates": len(test_dups),
        },
        "note": (
            "Texts compared after folding case and whitespace; the first occurrence is kept. Rows are 1-based "
            f"data rows of the source CSV (header not counted). Leading/trailing whitespace was stripped from "
            f"every message ({stripped} changed). dev = a stratified {DEV_FRACTION:.0%} of the de-duplicated "
            f"train rows per intent (random.Random({SEED}))."
        ),
        "dropped_items": {
            "train_duplicates": train_dups,
            "test_overlapping_train": test_overlap,
            "test_duplicates": test_dups,
        },
    }
    suite = {
        "name": NAME,
        "version": "1.0.0",
        "task": "classification",
        "description": "Route a bank customer's message to one of 77 intents (banking77).",
        "instruction": INSTRUCTION,
        "output": {"kind": "label", "key": "intent", "labels": labels},
        "scorers": ["format_compliance", "hallucination_rate", "task_accuracy"],
        "source": {
            "dataset": "banking77",
            "url": REPO_URL,
            "commit": COMMIT,
            "license": "CC BY 4.0",
            "attribution": ATTRIBUTION,
            "files_sha256": {n: sha256(src / n) for n in ("train.csv", "test.csv", "categories.json")},
            "build": "python suites/_build/ticket_triage.py",
            "counts": counts,
        },
        "cleaning": cleaning,
        # 22 inputs of dev/test differ from a train input only in punctuation (`auto top up` / `auto top-up`);
        # kept, so that published scores stay comparable. The loader refuses such pairs in any suite that does not
        # say this.
        "near_duplicates": "allow",
    }
    write_folder(
        args.out / NAME,
        {
            "suite.yaml": "# Generated by suites/_build/ticket_triage.py; edit that script, not this file.\n"
            + dump_yaml(suite),
            "train.jsonl": jsonl(rows(train)),
            "dev.jsonl": jsonl(rows(dev)),
            "test.jsonl": jsonl(rows(test)),
            "SOURCE.md": source_md(counts, cleaning, len(train_raw), len(test_raw), stripped),
            "LICENSE": (src / "LICENSE").read_bytes(),
        },
    )
    print(f"{NAME}: {counts}; dropped {cleaning['dropped']}")


def source_md(counts, cleaning, n_train, n_test, stripped) -> str:
    def items(key, ref):
        return "\n".join(
            f"  - row {d['row']} `{json.dumps(d['text'], ensure_ascii=False)}` ({d['intent']}), {ref} row {d[k]}"
            for d in cleaning["dropped_items"][key]
            for k in [next(k for k in d if k.endswith("row") and k != "row")]
        )

    d = cleaning["dropped"]
    return f"""# ticket-triage: origin and cleaning

- Dataset: banking77 (PolyAI), {REPO_URL}, commit `{COMMIT}`, files `banking_data/train.csv`,
  `banking_data/test.csv`, `banking_data/categories.json` (via ../shared/datasets/banking77).
- License: Creative Commons Attribution 4.0 International (CC BY 4.0); the license text is in `LICENSE`.
  The data here is adapted (re-formatted, de-duplicated, re-split) from the original.
- Attribution / citation: {ATTRIBUTION}
- Build: `python suites/_build/ticket_triage.py --source ../shared/datasets` (seed {SEED}, stdlib + PyYAML).

## Format
Each line: `{{"input": <customer message>, "output": {{"intent": <category>}}}}`; the label set is the 77 categories
of `categories.json` (sorted) in `suite.yaml`.

## Splits
| split | examples | from |
| --- | --- | --- |
| train | {counts['train']} | banking77 train ({n_train}) minus duplicates, minus dev |
| dev | {counts['dev']} | stratified {DEV_FRACTION:.0%} of the de-duplicated train per intent, `random.Random({SEED})` |
| test | {counts['test']} | banking77 test ({n_test}) minus items also in train, minus test-internal duplicates |

## Cleaning (what was dropped, exactly)
Texts are compared after folding case and whitespace (`" ".join(s.casefold().split())`, as the harness does);
the first occurrence is kept. Rows are 1-based data rows of the source CSV (header not counted).
Leading/trailing whitespace was stripped from every message ({stripped} messages changed, e.g. leading `\\n`).

- Train duplicates dropped: {d['train_duplicates']}
{items('train_duplicates', 'same as train')}
- Test items whose text is also in train, dropped: {d['test_overlapping_train']}
{items('test_overlapping_train', 'in train')}
- Test-internal duplicates dropped: {d['test_duplicates']}
{items('test_duplicates', 'same as test')}
"""


if __name__ == "__main__":
    main()
