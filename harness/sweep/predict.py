"""Answer new inputs with a finished trial: its saved adapter or model, prompted exactly as in evaluation."""

from __future__ import annotations

from pathlib import Path

from harness.core.errors import HarnessError
from harness.data.contract import parse_output
from harness.data.prompting import Prompter, max_answer_tokens
from harness.data.suites import Example, load_suite
from harness.models import sources as models
from harness.models.device import default_dtype, resolve_device
from harness.store.database import Store
from harness.training.generate import generate
from harness.training.methods import Candidate


def load_candidate(store: Store, trial_id: str, device: str = "auto") -> tuple[Candidate, object]:
    """Rebuild the trial's model and prompter; returns (candidate, suite)."""
    trial = store.get_trial(trial_id)
    if trial is None:
        raise HarnessError(f"no trial {trial_id!r}; list them with `harness trials`.")
    if trial["status"] != "complete":
        raise HarnessError(f"trial {trial_id} is {trial['status']}; predict needs a complete trial.")
    study = store.get_study(trial["study"])
    suite = load_suite(study["suite"])
    if suite.version != study["suite_version"]:
        raise HarnessError(f"trial {trial_id} was scored on suite {suite.name} {study['suite_version']}, but the "
                           f"suite on disk is {suite.version}; its prompt and labels may differ.")
    source = models.resolve(study["model_name"])
    if source.sha256 != study["model_sha256"]:
        raise HarnessError(f"the model {source.name} on this machine (sha256 {source.sha256[:12]}) is not the one "
                           f"trial {trial_id} used ({study['model_sha256'][:12]}).")
    device = resolve_device(device)
    dtype = default_dtype(device)
    tokenizer = models.load_tokenizer(source)
    if trial["trained"]:
        artifact = trial["artifact_path"]
        if not artifact or not Path(artifact).is_dir():
            raise HarnessError(f"trial {trial_id} kept no saved weights (retention keeps the best "
                               "`retention.keep_best` trials); re-run it or raise keep_best.")
        model = _load_trained(source, Path(artifact), trial["method"], device, dtype)
    else:
        model = models.load_model(source, device, dtype)
    by_id = {ex.id: ex for ex in suite.splits["train"]}
    shots = tuple(by_id[i] for i in trial["details"].get("shots", []))
    prompter = Prompter(tokenizer, suite.instruction, suite.contract, shots,
                        include_contract=trial["details"].get("include_contract", True))
    return Candidate(model, tokenizer, prompter, trial["trained"]), suite


def predict(store: Store, trial_id: str, inputs: list[str], device: str = "auto",
            batch_size: int = 16) -> list[dict]:
    candidate, suite = load_candidate(store, trial_id, device)
    examples = [Example(id=f"input:{i + 1}", input=text, target="") for i, text in enumerate(inputs)]
    limit = max_answer_tokens(candidate.tokenizer, suite.contract, [ex.target for ex in suite.splits["train"]])
    prompts = [candidate.prompter.prompt(ex) for ex in examples]
    results = []
    for ex, gen in zip(examples, generate(candidate.model, candidate.tokenizer, prompts, batch_size, limit)):
        parsed = parse_output(gen.output, suite.contract)
        results.append({"input": ex.input, "output": gen.output, "parsed": parsed.value,
                        "format_compliant": parsed.compliant, "error": parsed.error})
    return results


def _load_trained(source, artifact: Path, method: str, device: str, dtype):
    if method == "full":
        local = models.ModelSource(name=str(artifact), path=str(artifact), sha256=source.sha256,
                                   provenance=source.provenance, note=source.note, license=source.license,
                                   has_chat_template=source.has_chat_template)
        return models.load_model(local, device, dtype)
    from peft import PeftModel

    base = models.load_model(source, device, dtype)  # QLoRA adapters load onto the unquantized base here
    return PeftModel.from_pretrained(base, str(artifact)).eval()
