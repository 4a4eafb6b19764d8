"""Build suites/general/gsm8k/: 250 GSM8K test problems for the lm-eval regression check, plus 5 other test
problems as fixed few-shot exemplars. Not a task suite.

Run from the repo root: `python suites/_build/gsm8k_general.py [--source ../shared/datasets]`.
Only the test split is vendored, so the exemplars come from it too; they are drawn first and never evaluated.
Rows keep upstream text exactly (calculator annotations `<<...>>` included, as lm-eval's own gsm8k task does).
"""

from __future__ import annotations

import json
import random

from _common import SEED, jsonl, parse_args, sha256, write_folder

REPO_URL = "https://github.com/openai/grade-school-math"
COMMIT = "3101c7d5072418e28b9008a6636bde82a006892c"
N_EVAL, N_SHOTS = 250, 5
ATTRIBUTION = (
    'Cobbe, Kosaraju, Bavarian, Chen, Jun, Kaiser, Plappert, Tworek, Hilton, Nakano, Hesse, Schulman (2021), '
    '"Training Verifiers to Solve Math Word Problems", arXiv:2110.14168.'
)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    src = args.source / "gsm8k"
    lines = [line for line in (src / "test.jsonl").read_text(encoding="utf-8").split("\n") if line.strip()]
    rows = [{"id": f"gsm8k-test-{i}", **json.loads(line)} for i, line in enumerate(lines)]
    if not all("\n#### " in r["answer"] for r in rows):
        raise SystemExit(f"{src}/test.jsonl: every answer must end with a '#### <number>' line")
    picked = random.Random(SEED).sample(range(len(rows)), N_EVAL + N_SHOTS)
    shots, evals = picked[:N_SHOTS], sorted(picked[N_SHOTS:])
    source_md = f"""# general/gsm8k: GSM8K test subset (general-capability check, generative)

- Dataset: GSM8K (Grade School Math 8K), {REPO_URL}, commit `{COMMIT}`, file
  `grade_school_math/data/test.jsonl` (sha256 `{sha256(src / "test.jsonl")}`, {len(rows)} problems).
- License: MIT, Copyright (c) 2021 OpenAI; see `LICENSE`.
- Attribution / citation: {ATTRIBUTION}
- Build: `python suites/_build/gsm8k_general.py --source ../shared/datasets` (stdlib + PyYAML), seed {SEED}.

## Format
Lines `{{"id": "gsm8k-test-<i>", "question", "answer"}}`, `i` = 0-based line of upstream `test.jsonl`; text unchanged.
- `gsm8k-{N_EVAL}.jsonl`: {N_EVAL} problems drawn with `random.Random({SEED}).sample`, kept in upstream order.
- `gsm8k-fewshot.jsonl`: {N_SHOTS} further test problems (ids {", ".join(str(i) for i in shots)}), the fixed 5-shot
  exemplars (lm-eval's own gsm8k task takes them from the train split, which is not vendored). Never evaluated.

Scored by `suites/general/lm_eval/harness_gsm8k.yaml`: exact match of the number after `####`.
Only meaningful for models that score clearly above noise: 135M models solve about 1-2%, so a delta on 250
problems is dominated by chance. Use PIQA for small models.
"""
    write_folder(
        args.out / "general" / "gsm8k",
        {
            f"gsm8k-{N_EVAL}.jsonl": jsonl([rows[i] for i in evals]),
            "gsm8k-fewshot.jsonl": jsonl([rows[i] for i in shots]),
            "SOURCE.md": source_md,
            "LICENSE": (src / "LICENSE").read_bytes(),
        },
    )
    print(f"general/gsm8k: {N_EVAL} problems + {N_SHOTS} exemplars")


if __name__ == "__main__":
    main()
