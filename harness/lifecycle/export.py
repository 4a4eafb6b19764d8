"""`harness export`: what serving stacks load.

- An adapter trial (LoRA, QLoRA) exports the standard PEFT folder, `adapter_config.json` and
  `adapter_model.safetensors`, which vLLM's `--lora-modules` and TGI accept; `--merged` adds the base model with the
  adapter merged in. A full fine-tuning trial exports the whole model (it is already merged).
- `base_model_name_or_path` names what the adapter goes on: the local folder of an embedded or local base model (its
  identity and sha256 are in `base_model.json`), or the hub id of a hub model.
- `serving.json` holds the exact system prompt, answer cap and decoding (constrained or not) the trial was scored
  with, and `README.md` the commands that load it with vLLM and with PEFT (`serving_notes`). Weights are written as
  safetensors only, readable as any file the user writes (the umask's mode, not a temporary file's 0600).
- With `rescore`, the adapter is re-scored through vLLM (`served`) into `rescore.json` before the folder appears.
- A prompting trial has no weights: where prompting won, its prompt is what goes to production, and its export holds
  that prompt (its shots, decoding and model) as the trial was scored with it (`prompt_export`).
The folder appears whole or not at all: it is written beside `--out` and renamed into place once complete.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.core.errors import HarnessError
from harness.core.records import AdapterEvent, TrialView
from harness.core.text import with_article
from harness.lifecycle.promote import check_weights, status_of
from harness.lifecycle.prompt_export import ENDPOINT, write_prompt
from harness.lifecycle.served import ServedRescore, check_vllm, rescore_served
from harness.lifecycle.serving_notes import CHECKSUMS, base_model_json, readme, serving_json
from harness.models import loading, sources
from harness.serving.vllm import VllmSettings
from harness.store.database import Store
from harness.store.weights import folder_sha256
from harness.sweep.predict import load_candidate


@dataclass(frozen=True)
class Export:
    folder: Path
    kind: str
    """`adapter` (PEFT), `model` (a whole model: full fine-tuning, or --merged) or `prompt` (a prompting trial's)."""
    base: str
    """What `base_model_name_or_path` names; for a prompt, what answers it (the base model, or a hosted model)."""
    rescore: ServedRescore | None = None
    """The re-score through vLLM, when one was asked for (also in `rescore.json`)."""
    caution: str | None = None
    """Why this adapter is no candidate to serve as it is (`standing`), said beside the export; None otherwise."""


def export(store: Store, trial_id: str, out: Path, merged: bool = False,
           rescore: VllmSettings | None = None, replace: bool = False) -> Export:
    """`rescore`: also re-score the adapter through this vLLM (see `served.rescore_served`), before the folder
    appears, so a re-score that fails leaves no export behind and the same command can run again. `replace`: `out`
    may hold an earlier export (never any other folder), swapped for the new one only once it is written whole."""
    out = Path(out)
    if out.is_symlink():  # a link planted at a shared path would send the weights (and prompts) where it points
        raise HarnessError(f"--out {out} is a symbolic link (to {os.readlink(out)}); export never writes through a "
                           "link. Give the folder itself, or a new path.")
    if out.exists() and not out.is_dir():
        raise HarnessError(f"--out {out} is a file; export into a new folder (nothing is overwritten).")
    if out.exists() and any(out.iterdir()) and not (replace and is_export(out)):
        how = (f"it holds no export (no {' or '.join(EXPORT_MARKS)}), so --replace leaves it alone" if replace else
               "add --replace to replace an earlier export there")
        raise HarnessError(f"{out} exists and is not empty; export into a new folder, or {how} (nothing else is "
                           "ever overwritten).")
    if replace and out.exists() and any(out.iterdir()):
        check_only_exported(out)
    trial = store.require_trial(trial_id, complete=True)
    check_flags(trial, merged, rescore is not None)
    check_outside_artifacts(out, trial)
    check_weights(store, trial)
    if rescore is not None:  # a server that does not answer costs seconds now, not an export and a model load
        check_vllm(rescore)
    staging = out.parent / f".{out.name}.export-tmp"
    shutil.rmtree(staging, ignore_errors=True)
    try:  # before the model loads: a folder that cannot be written costs nothing
        staging.mkdir(parents=True)
    except OSError as exc:
        raise HarnessError(f"--out {out}: cannot write there ({exc.strerror}: {exc.filename}); give a folder in a "
                           "writable place.") from None
    try:
        if trial.trained:
            adapter, base = _write_folder(store, trial, staging, merged)
        else:  # where prompting won, its prompt is what goes to production
            adapter, base = False, write_prompt(store, trial, staging)
        served = None
        if rescore is not None:  # after the model above is freed: the re-score loads its own copy
            served = rescore_served(store, trial.id, rescore, out.parent / f"{out.name}-vllm.log")
            (staging / "rescore.json").write_text(json.dumps(served.to_dict(), indent=2, default=str) + "\n")
        if list(staging.rglob("*.bin")) or list(staging.rglob("*.pt")):
            raise HarnessError("the export holds a pickle weight file; only safetensors are allowed.")
        status = status_of(store, trial.id) if trial.trained else None
        # what the folder is in the registry, for whoever picks it up without the database
        list_files(staging, {"registry": {"status": status, "feasible": trial.feasible,
                                          "under_trained": trial.under_trained}} if trial.trained else {})
        give_usual_modes(staging)
        out.parent.mkdir(parents=True, exist_ok=True)
        earlier = out.parent / f".{out.name}.export-old"
        if out.exists():  # empty, or an earlier export (--replace): moved aside, then the new one in its place
            shutil.rmtree(earlier, ignore_errors=True)
            out.rename(earlier)
        staging.rename(out)
        shutil.rmtree(earlier, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Export(out, "adapter" if adapter else "model" if trial.trained else "prompt", base, served,
                  standing(trial, status, store.adapter_events(trial_id=trial.id)) if trial.trained else None)


def standing(trial: TrialView, status: str, events: Sequence[AdapterEvent] = ()) -> str | None:
    """Why a trained trial, of registry `status` after `events` (its registry history), is no candidate to serve as
    it is: it breaks the sweep's constraints, its time cap cut it short, no gate has passed it (a candidate, or an
    adapter promoted over a failed gate with --force), or it left staging and production since. A CI job exported an
    adapter the gate had refused, with no word; an adapter rolled back out of production read "no gate has passed
    it" though it had passed twice. None for an adapter in staging or production that a gate passed."""
    passed = any(event.gate_outcome == "passed" for event in events)
    served = status in ("staging", "production")
    how = ("an approver promoted it over a failed gate" if any(event.forced for event in events)
           else "no gate's pass is on record")
    reasons = [text for broken, text in (
        (trial.feasible is False, "it breaks the sweep's constraints (`harness show` says which)"),
        (trial.under_trained, "its time cap cut its training short"),
        (not passed and not served,
         f"it is {with_article(status)} in the registry: no gate has passed it (`harness promote`)"),
        (not passed and served, f"it is in {status} without a gate's pass: {how} (`harness registry --history` "
                                "says why)"),
        (passed and not served, f"it is {with_article(status)} in the registry: a gate passed it, and it has left "
                                "staging and production since (`harness registry --history`)"),
    ) if broken]
    return f"{trial.id} was exported as it is, but " + "; ".join(reasons) + "." if reasons else None


EXPORT_MARKS = ("serving.json", "base_model.json")
"""What every export folder holds (a hosted prompt's has `endpoint.json` for the second): `--replace` replaces only
a folder with both."""


FILES_KEY = "files"
"""serving.json's list of every file the export wrote: `--replace` replaces a folder that holds nothing else."""


def check_flags(trial: TrialView, merged: bool, rescore: bool) -> None:
    """Refuse weights-only flags for a prompting trial, before anything else is asked for."""
    if not trial.trained and (asked := " and ".join(flag for flag, given in (("--merged", merged),
                                                                             ("--rescore", rescore)) if given)):
        raise HarnessError(f"{asked}: {trial.id} is {with_article(trial.method)} trial"
                           ", with no weights of its own to merge or "
                           f"re-score; `harness export {trial.id} --out DIR` alone writes its prompt.")


def list_files(folder: Path, extra: Mapping[str, Any] = MappingProxyType({})) -> None:
    """Record in serving.json every file the export holds (itself and the checksum file included), and `extra`
    (a trained trial's `registry` standing), then write the checksum file: each file's sha256, as `sha256sum -c`
    reads it. An export headed for a serving machine could not be checked there: a weights file cut short in the
    copy was caught by nothing."""
    serving = folder / EXPORT_MARKS[0]
    data = {**json.loads(serving.read_text(encoding="utf-8")), **extra}
    data[FILES_KEY] = sorted([*(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()), CHECKSUMS])
    serving.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    sums = folder_sha256(folder)  # before the checksum file itself is there
    (folder / CHECKSUMS).write_text("".join(f"{digest}  {name}\n" for name, digest in sums.items()), encoding="utf-8")


def check_only_exported(folder: Path) -> None:
    """Refuse to replace an export folder that holds files of the user's own: replacing it would delete them."""
    try:
        listed = json.loads((folder / EXPORT_MARKS[0]).read_text(encoding="utf-8")).get(FILES_KEY)
    except (OSError, ValueError, AttributeError):
        listed = None
    if not isinstance(listed, list):
        raise HarnessError(f"--replace: {folder}/{EXPORT_MARKS[0]} lists no files (an export written before exports "
                           "listed theirs, or edited), so what else the folder holds cannot be told from the export; "
                           "move anything of your own out of it and delete it, or export into a new folder.")
    own = sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                 if (p.is_file() or p.is_symlink()) and str(p.relative_to(folder)) not in listed)
    if own:
        raise HarnessError(f"--replace: {folder} holds {len(own)} file(s) the export did not write "
                           f"({', '.join(own[:5])}{', ...' if len(own) > 5 else ''}); replacing it would delete them. "
                           "Move them out first, or export into a new folder.")


def is_export(folder: Path) -> bool:
    return (folder / EXPORT_MARKS[0]).is_file() and any((folder / name).is_file()
                                                         for name in (EXPORT_MARKS[1], ENDPOINT))


def _write_folder(store: Store, trial: TrialView, folder: Path, merged: bool) -> tuple[bool, str]:
    """Write the weights, tokenizer, base_model.json, serving.json and README.md; returns (adapter, base)."""
    candidate, suite, cap = load_candidate(store, trial.id, device="cpu")
    study = store.study(trial.study)
    source = sources.resolve_recorded(study.model_name, f"study {study.name}")
    adapter = trial.method in ("lora", "qlora")
    base = source.path  # a local folder (embedded or local models), or the hub id of a hub model
    candidate.model.save_pretrained(folder, safe_serialization=True)
    candidate.tokenizer.save_pretrained(folder)
    if adapter:
        _name_base(folder / "adapter_config.json", base)
    if merged and adapter:
        whole = candidate.model.merge_and_unload()
        whole.save_pretrained(folder / "merged", safe_serialization=True)
        candidate.tokenizer.save_pretrained(folder / "merged")
    _write(folder / "base_model.json", base_model_json(source))
    constrained = getattr(candidate, "grammar", None) is not None  # as the trial answered when it was scored
    _write(folder / "serving.json", serving_json(trial, suite, candidate.prompter, cap, constrained))
    context = loading.window_of(candidate.model.config, candidate.tokenizer)
    (folder / "README.md").write_text(readme(trial, suite, base, adapter, merged, study.model_name, constrained,
                                             context, candidate.prompter.chat), encoding="utf-8")
    return adapter, base


def check_outside_artifacts(out: Path, trial: TrialView) -> None:
    """The trials' weights folder belongs to the sweep: retention deletes there and `harness merge` copies from
    there, so an export inside it could vanish, or change the weights a later audit hashes."""
    if trial.artifact_path is None:
        return
    artifacts = trial.artifact_path.resolve().parent.parent
    if out.resolve().is_relative_to(artifacts):
        raise HarnessError(f"--out {out} is inside {artifacts}, where the sweep keeps its trials' weights (retention "
                           "deletes there, `harness merge` copies from there); export to a folder outside it.")


def give_usual_modes(folder: Path) -> None:
    """Give every file the mode a file the user writes gets (0644 under the usual umask): weights saved through a
    temporary file come out 0600, which a server running as another user cannot read."""
    umask = os.umask(0)  # the only way to read it; set back at once (export starts no threads that write files)
    os.umask(umask)
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(0o666 & ~umask)


def _name_base(config_path: Path, base: str) -> None:
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = base
    _write(config_path, config)


def _write(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
