"""`harness export` of a prompting trial: where prompting won, its prompt is what goes to production.

The export holds the prompt exactly as the trial was scored with it, so a service can send the same conversation:
- `serving.json`: the system prompt (the suite's instruction, or the one a prompt search chose, with the contract
  stated), the shots, the answer cap and the decoding, and for shots fixed in advance the whole conversation with
  `{input}` where the input goes. A hosted trial's export names its endpoint and model (never its key) and the request
  body it sent; a local one's `base_model.json` names the base model and its sha256, as an adapter's export does.
- `shots_pool.jsonl`: for shots chosen per input (`shot_selection: similar`), the train examples they are chosen from.
- `README.md`: how to serve it.

`load_prompt(folder)` rebuilds the trial's `Prompter` from those files alone, with no results store, suite or model:
`load_prompt(folder).messages(Example(...))` is the conversation the trial sent for that input.
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.records import TrialView
from harness.data.contract import OutputContract
from harness.data.prompting import Prompter
from harness.data.shots import FixedShots, SimilarShots
from harness.data.suites import Example, Suite
from harness.hosted.client import ChatRequest
from harness.lifecycle.prompt_notes import prompt_readme, same_for_every_input
from harness.lifecycle.serving_notes import PLACEHOLDER, base_model_json, decoding
from harness.models import loading
from harness.store.database import Store
from harness.sweep.predict import Rebuilt, check_shots, rebuild
from harness.training.methods.api import hosted_max_tokens, structured_format

SERVING = "serving.json"
POOL = "shots_pool.jsonl"
ENDPOINT = "endpoint.json"
"""What a hosted trial's export names instead of `base_model.json`: the endpoint's URL and model, never its key."""

SIMILAR_RANKING = ("BM25 as Lucene scores it (the bm25s package), over the inputs' Unicode words (and, in scripts "
                   "written without spaces, each character and each pair of neighbours); equal scores keep the pool's "
                   "order; a pool example whose input equals the input is never shown; the most similar comes last, "
                   "right before the input")


def write_prompt(store: Store, trial: TrialView, folder: Path) -> str:
    """Write a prompting trial's `serving.json` (with `shots_pool.jsonl` for similar shots), `base_model.json` or
    `endpoint.json`, and README.md into `folder`; returns what answers the prompt (the base model's path or hub id, or
    the endpoint's model). Nothing loads but the tokenizer, and no endpoint is asked."""
    rebuilt = rebuild(store, trial.id, device="cpu", endpoints=False)
    hosted, source = rebuilt.method.hosted, rebuilt.ctx.source
    tokenizer = None if hosted else loading.load_tokenizer(source)
    prompter = rebuilt.method.framing(rebuilt.ctx, rebuilt.params, tokenizer)
    if prompter is None:  # a prompt search that recorded no prompt (never for a complete trial)
        raise HarnessError(f"trial {trial.id} recorded no prompt to export.")
    check_shots(rebuilt, prompter)
    serving = prompt_json(trial, rebuilt.suite, prompter, rebuilt.ctx.max_new_tokens)
    if hosted:
        serving |= _hosted(rebuilt, prompter, serving)
        _write(folder / ENDPOINT, serving["endpoint"])
        served, context = serving["endpoint"]["model"], None
    else:
        serving |= decoding(rebuilt.suite.contract, bool(getattr(rebuilt.params, "constrained", False)),
                            rebuilt.ctx.max_new_tokens)
        _write(folder / "base_model.json", base_model_json(source))
        served, context = source.path, loading.context_window(source, tokenizer)
    _write(folder / SERVING, serving)
    if isinstance(prompter.shots, SimilarShots):
        with (folder / POOL).open("w", encoding="utf-8") as out:
            for ex in prompter.shots.pool:
                out.write(json.dumps({"id": ex.id, "input": ex.input, "output": ex.target}, ensure_ascii=False) + "\n")
    study = store.study(trial.study)
    (folder / "README.md").write_text(prompt_readme(trial, rebuilt.suite, serving, served, study.model_name, context),
                                      encoding="utf-8")
    return served


def prompt_json(trial: TrialView, suite: Suite, prompter: Prompter, cap: int) -> dict:
    """The prompt as the trial framed every input: enough for `load_prompt` to rebuild it."""
    shots = prompter.shots
    if isinstance(shots, SimilarShots):
        picked = {"selection": "similar", "k": shots.k, "pool": POOL, "pool_size": len(shots.pool),
                  "ranking": SIMILAR_RANKING}
    else:
        picked = {"selection": "fixed", "examples": [{"id": ex.id, "input": ex.input, "output": ex.target}
                                                     for ex in getattr(shots, "examples", ())]}
    own = any(ex.instruction for split in suite.splits.values() for ex in split)
    laid_out = {}
    if same_for_every_input(picked["selection"], own):  # given whole, with the input's place marked
        placeholder = Example("serving", PLACEHOLDER, "")
        if prompter.tokenizer is None or prompter.chat:
            laid_out["messages"] = prompter.messages(placeholder)
        else:  # no chat template: the trial prompted plain text, through the completions endpoint
            laid_out["prompt_template"] = prompter.prompt(placeholder)
        if (fits := prompter.input_room()) is not None:  # past this, the trial left out its first shots
            laid_out["input_tokens_with_all_shots"] = fits
    return {
        "trial": trial.id, "method": trial.method, "suite": suite.name, "suite_version": suite.version,
        "instruction": prompter.instruction, "instruction_per_input": own,
        "system_prompt": prompter.system_text(Example("serving", "", "")),
        "chat_template": prompter.tokenizer is None or prompter.chat, "output_contract": suite.contract.to_dict(),
        "shots": picked, "room": prompter.room, "max_new_tokens": cap, **laid_out,
    }


def _hosted(rebuilt: Rebuilt, prompter: Prompter, serving: dict) -> dict:
    """What the trial asked its endpoint: the URL and model, and the request body for the conversation."""
    name = rebuilt.params.endpoint
    endpoint = rebuilt.ctx.config.endpoints[name]
    structured = bool(rebuilt.params.structured)
    request = ChatRequest(prompter.messages(Example("serving", PLACEHOLDER, "")),
                          hosted_max_tokens(endpoint, rebuilt.ctx.max_new_tokens),
                          structured_format(rebuilt.suite.contract) if structured else None).body()
    if "messages" not in serving:
        request.pop("messages")  # they differ input by input
    return {"endpoint": {"name": name, "base_url": endpoint.base_url, "model": endpoint.model,
                         "api_key_env": endpoint.api_key_env},
            "decoding": "temperature 0" + (", structured output requested" if structured else ""),
            "structured": structured, "request": request}


def load_prompt(folder: Path | str, tokenizer=None) -> Prompter:
    """The trial's prompter, rebuilt from an export folder. `tokenizer`: the base model's, for a local model; with it,
    shots that would take a prompt past the model's window are left out as they were when it was scored, and a model
    without a chat template gets its plain-text layout. A `serving.json` edited by hand into something the export
    never writes is refused, naming what."""
    folder = Path(folder)
    where = folder / SERVING
    serving = _read(where)
    try:
        contract = OutputContract.from_dict(serving["output_contract"], str(where))
        shots = serving["shots"]
        if shots["selection"] == "similar":
            rows = [json.loads(line) for line in (folder / shots["pool"]).read_text(encoding="utf-8").splitlines()
                    if line.strip()]
            k = shots["k"]
            if not isinstance(k, int) or isinstance(k, bool) or k < 1:
                raise ValueError(f"shots.k must be a whole number of at least 1, not {k!r}")
            picker = SimilarShots(_examples(rows, f"{folder / shots['pool']}"), k)
        elif shots["selection"] == "fixed":
            picker = FixedShots(_examples(shots["examples"], "shots.examples"))
        else:
            raise ValueError(f"shots.selection must be fixed or similar, not {shots['selection']!r}")
        instruction, room = serving["instruction"], serving["room"]
        if not isinstance(instruction, str):
            raise ValueError(f"instruction must be text, not {instruction!r}")
        if room is not None and (not isinstance(room, int) or isinstance(room, bool) or room < 1):
            raise ValueError(f"room must be a whole number of tokens or null, not {room!r}")
        prompter = Prompter(tokenizer, instruction, contract, picker, include_contract=True,
                            room=room if tokenizer is not None else None)
    except (KeyError, TypeError, ValueError, OSError, HarnessError) as exc:
        raise HarnessError(f"{where}: not a prompt export this harness can read ({type(exc).__name__}: {exc}); "
                           "export the trial again with `harness export`.") from None
    fits = serving.get("input_tokens_with_all_shots")
    whole = not isinstance(fits, int) or fits >= 0  # else its shots never all fit, and `messages` shows fewer
    shown = prompter.messages(Example("serving", PLACEHOLDER, ""))
    if "messages" in serving and whole and serving["messages"] != shown:
        raise HarnessError(f"{where}: `messages` is not the conversation its `instruction` and `shots` make: one was "
                           "edited without the other. Export the trial again with `harness export`.")
    return prompter


def _examples(rows: object, where: str) -> tuple[Example, ...]:
    """Shots as the export writes them: each an object with text `id`, `input` and `output`."""
    if not isinstance(rows, list):
        raise ValueError(f"{where} must be a list of shots")
    for i, row in enumerate(rows, 1):
        if not isinstance(row, dict) or not all(isinstance(row.get(k), str) for k in ("id", "input", "output")):
            raise ValueError(f"{where}: shot {i} must have text `id`, `input` and `output` (an answer is written as "
                             "the text the model was shown, such as a JSON object inside a string)")
    return tuple(Example(row["id"], row["input"], row["output"]) for row in rows)


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{path}: cannot be read as a prompt export ({exc}).") from None


def _write(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
