"""Answer new inputs with a finished trial: its saved adapter or model, prompted exactly as in evaluation.

The trial's method loads what it saved (`Method.load`); the suite comes from the path the study recorded (so this
works from any folder), else by name; the model and the suite must be the ones the trial was scored with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import HarnessError
from harness.data.contract import parse_output
from harness.data.prompting import Prompter, max_answer_tokens
from harness.data.suites import Example, Suite, load_suite
from harness.models import sources
from harness.models.device import default_dtype, resolve_device
from harness.store.database import Store
from harness.training.generate import generate
from harness.training.methods import METHODS
from harness.training.methods.base import Candidate


@dataclass(frozen=True)
class Prediction:
    input: str
    output: str
    parsed: dict | None
    format_compliant: bool
    error: str | None


def load_candidate(store: Store, trial_id: str, device: str = "auto") -> tuple[Candidate, Suite]:
    """Rebuild the trial's model and prompter."""
    trial = store.require_trial(trial_id, complete=True)
    study = store.study(trial.study)
    if study is None:
        raise HarnessError(f"trial {trial.id} has no study record in {store.path}; it cannot be rebuilt.")
    suite = load_suite(study.suite_path if study.suite_path and Path(study.suite_path).is_dir() else study.suite)
    if suite.version != study.suite_version:
        raise HarnessError(f"trial {trial.id} was scored on suite {suite.name} {study.suite_version}, but the "
                           f"suite found at {suite.path} is {suite.version}; its prompt and labels may differ.")
    source = sources.resolve(study.model_name)
    if source.sha256 != study.model_sha256:
        raise HarnessError(f"the model {source.name} on this machine (sha256 {source.sha256[:12]}) is not the one "
                           f"trial {trial.id} used ({study.model_sha256[:12]}).")
    method = METHODS.get(trial.method)
    if trial.trained and (trial.artifact_path is None or not trial.artifact_path.is_dir()):
        kept = "retention removed them (it keeps the best `retention.keep_best` trials)" if trial.artifact_path \
            is None else f"{trial.artifact_path} is missing"
        raise HarnessError(f"trial {trial.id} has no saved weights: {kept}. Re-run it, or raise keep_best.")
    device = resolve_device(device)
    model, tokenizer = method.load(source, trial.artifact_path, device, default_dtype(device))
    by_id = {ex.id: ex for ex in suite.splits["train"]}
    missing = [i for i in trial.shots if i not in by_id]
    if missing:
        raise HarnessError(f"trial {trial.id} was prompted with train examples {missing[:3]} that suite "
                           f"{suite.name} {suite.version} at {suite.path} does not have.")
    prompter = Prompter(tokenizer, suite.instruction, suite.contract, tuple(by_id[i] for i in trial.shots),
                        include_contract=True if trial.include_contract is None else trial.include_contract)
    return Candidate(model, tokenizer, prompter, trial.trained), suite


def predict(store: Store, trial_id: str, inputs: list[str], device: str = "auto",
            batch_size: int = 16) -> list[Prediction]:
    candidate, suite = load_candidate(store, trial_id, device)
    examples = [Example(id=f"input:{i + 1}", input=text, target="") for i, text in enumerate(inputs)]
    limit = max_answer_tokens(candidate.tokenizer, suite.contract, [ex.target for ex in suite.splits["train"]])
    prompts = [candidate.prompter.prompt(ex) for ex in examples]
    results = []
    for ex, gen in zip(examples, generate(candidate.model, candidate.tokenizer, prompts, batch_size, limit)):
        parsed = parse_output(gen.output, suite.contract)
        results.append(Prediction(ex.input, gen.output, parsed.value, parsed.compliant, parsed.error))
    return results
