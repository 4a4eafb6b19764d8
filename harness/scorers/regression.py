"""General-capability regression check: PIQA by log-likelihood.

Fine-tuning on a narrow task can quietly damage what the model knew before. PIQA (pick the more sensible of two
solutions to a physical goal) is scored without generation: the model's length-normalised log-likelihood of each
solution given the goal decides, so the check is cheap, deterministic, and independent of output format.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

PROMPT = "Question: {goal}\nAnswer:"


@dataclass(frozen=True)
class PiqaItem:
    id: str
    goal: str
    solutions: tuple[str, str]
    label: int
    """Index (0 or 1) of the correct solution."""


def load_piqa(path: Path, limit: int | None, seed: int = 0) -> list[PiqaItem]:
    """Read PIQA JSONL lines {"id", "goal", "sol1", "sol2", "label"}; a seeded subset (in file order) when
    `limit` is smaller than the file, so every trial of an experiment sees the same items."""
    path = Path(path)
    if limit is not None and limit < 0:
        raise HarnessError(f"PIQA limit must be >= 0 or unset, got {limit}; fix the regression `limit` setting.")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read the PIQA file ({exc.strerror}); check the path.") from None
    items = [_item(line, f"{path}:{no}", no) for no, line in enumerate(lines, 1) if line.strip()]
    if limit is not None and limit < len(items):
        keep = sorted(random.Random(seed).sample(range(len(items)), limit))
        items = [items[i] for i in keep]
    return items


def _item(line: str, where: str, no: int) -> PiqaItem:
    fix = 'each line must be {"id": ..., "goal": str, "sol1": str, "sol2": str, "label": 0 or 1}'
    try:
        raw = json.loads(line)
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{where}: not valid JSON ({exc.msg}); {fix}.") from None
    if not isinstance(raw, dict):
        raise HarnessError(f"{where}: expected a JSON object; {fix}.")
    missing = [k for k in ("goal", "sol1", "sol2", "label") if k not in raw]
    if missing:
        raise HarnessError(f"{where}: missing {', '.join(missing)}; {fix}.")
    if not all(isinstance(raw[k], str) for k in ("goal", "sol1", "sol2")):
        raise HarnessError(f"{where}: goal, sol1 and sol2 must be strings; {fix}.")
    label = raw["label"]
    if isinstance(label, str) and label.strip() in ("0", "1"):
        label = int(label)
    if label not in (0, 1) or isinstance(label, bool):
        raise HarnessError(f"{where}: label is {raw['label']!r}; {fix}.")
    return PiqaItem(str(raw.get("id", f"line-{no}")), raw["goal"], (raw["sol1"], raw["sol2"]), int(label))


def piqa_correct(model, tokenizer, items: Sequence[PiqaItem], batch_size: int = 16) -> list[bool]:
    """Per item: True when the solution with the higher mean per-token log-likelihood is the labelled one.

    Sequences are padded on the right by hand (the tokenizer's padding side is neither read nor changed), so
    real tokens keep positions 0..L-1 and results do not depend on the batch size or on how the tokenizer was
    configured. The model is put in eval mode for the call and restored after.
    """
    import torch

    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    seqs = [_encode(tokenizer, PROMPT.format(goal=it.goal), sol) for it in items for sol in it.solutions]
    scores = [float("-inf")] * len(seqs)
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    order = sorted((i for i, (ids, start) in enumerate(seqs) if 0 < start < len(ids)), key=lambda i: len(seqs[i][0]))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for b in range(0, len(order), batch_size):
                batch = order[b : b + batch_size]
                width = max(len(seqs[i][0]) for i in batch)
                ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    ids[row, : len(seqs[i][0])] = torch.tensor(seqs[i][0])
                    mask[row, : len(seqs[i][0])] = 1
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
                for row, i in enumerate(batch):
                    tokens, start = seqs[i]
                    target = torch.tensor(tokens[start:], device=logits.device)
                    logp = logits[row, start - 1 : len(tokens) - 1].float().log_softmax(-1)
                    scores[i] = logp.gather(-1, target[:, None]).mean().item()
    finally:
        model.train(was_training)
    return [
        (0 if scores[2 * k] >= scores[2 * k + 1] else 1) == item.label for k, item in enumerate(items)
    ]


def _encode(tokenizer, prompt: str, solution: str) -> tuple[list[int], int]:
    """(token ids, index of the first solution token).

    The solution tokens are those of `prompt + " " + solution` past the prompt's own tokens (as the
    lm-evaluation-harness does), which respects merges across the space; if the prompt's tokens are not a
    prefix, the solution is tokenised on its own. Special tokens the tokenizer puts before text (a BOS) are
    kept; ones it appends (an EOS) are not, so they are never scored as part of the answer.
    """
    context = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    whole = tokenizer(prompt + " " + solution, add_special_tokens=False)["input_ids"]
    if whole[: len(context)] == context and len(whole) > len(context):
        answer = whole[len(context) :]
    else:
        answer = tokenizer(" " + solution, add_special_tokens=False)["input_ids"]
    special = tokenizer(prompt)["input_ids"]
    cut = next((i for i in range(len(special) - len(context) + 1) if special[i : i + len(context)] == context), 0)
    prefix = special[:cut]
    return list(prefix) + list(context) + list(answer), len(prefix) + len(context)
