"""Build suites/general/piqa/piqa.jsonl: the PIQA validation set, used to check that fine-tuning did not cost
general capability (log-likelihood through lm-eval: suites/general/lm_eval/harness_piqa.yaml). Not a task suite.

Run from the repo root: `python suites/_build/piqa.py [--source ../shared/datasets]`.
Strings are kept exactly as published (some have trailing or doubled spaces) so item texts stay comparable.
"""

from __future__ import annotations

import json

from _common import jsonl, parse_args, sha256, write_folder

REPO_URL = "https://github.com/ybisk/ybisk.github.io"
COMMIT = "21edab439af693b961be2f069e8690a88d3b4e37"
ATTRIBUTION = (
    'Bisk, Zellers, Le Bras, Gao, Choi (2020), "PIQA: Reasoning about Physical Commonsense in Natural '
    'Language", AAAI 2020, arXiv:1911.11641.'
)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    src = args.source / "piqa"
    lines = (src / "valid.jsonl").read_text(encoding="utf-8").split("\n")
    items = [json.loads(line) for line in lines if line.strip()]
    labels = [int(x) for x in (src / "valid-labels.lst").read_text(encoding="utf-8").split()]
    if len(items) != len(labels) or set(labels) - {0, 1}:
        raise SystemExit(f"{src}: {len(items)} items but {len(labels)} labels (or a label not 0/1)")
    rows = [
        {"id": f"piqa-valid-{i}", "goal": it["goal"], "sol1": it["sol1"], "sol2": it["sol2"], "label": label}
        for i, (it, label) in enumerate(zip(items, labels))
    ]
    source_md = f"""# general/piqa: PIQA validation set (general-capability check)

- Dataset: PIQA, {REPO_URL} (the authors' site; data under `piqa/data/`), commit `{COMMIT}`; last commit
  touching `piqa/`: `341ce47393bf75dbeaa033492867f606edcbe584`. Files `piqa/data/valid.jsonl` (sha256
  `{sha256(src / "valid.jsonl")}`) and `piqa/data/valid-labels.lst` (sha256 `{sha256(src / "valid-labels.lst")}`).
- License: Academic Free License v. 3.0 (AFL-3.0), as stated by the authors; see `LICENSE.txt`
  (the repository has no license-text file; full text at https://opensource.org/licenses/AFL-3.0).
- Attribution / citation: {ATTRIBUTION}
- Build: `python suites/_build/piqa.py --source ../shared/datasets` (stdlib + PyYAML).

## Format
`piqa.jsonl`: {len(rows)} lines `{{"id": "piqa-valid-<i>", "goal", "sol1", "sol2", "label"}}`, `i` = 0-based line of
`valid.jsonl`, `label` = the matching line of `valid-labels.lst` (0 -> sol1 is correct, 1 -> sol2);
{labels.count(0)} x 0 and {labels.count(1)} x 1, chance = 50%. Strings are unchanged (trailing/doubled spaces kept).
Nothing was dropped. This folder is not a task suite (no suite.yaml); `load_suite` does not load it.
"""
    write_folder(
        args.out / "general" / "piqa",
        {"piqa.jsonl": jsonl(rows), "SOURCE.md": source_md, "LICENSE.txt": (src / "LICENSE.txt").read_bytes()},
    )
    print(f"general/piqa: {len(rows)} items")


if __name__ == "__main__":
    main()
