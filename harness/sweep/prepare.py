"""What every trial of a sweep shares, prepared once: the subsets, the model source, the generation cap, the
provenance stored with each trial (`prepare`, which loads no model), and the base model's score on the forgetting
check (`with_base_regression`: measured once, cached)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from optuna.distributions import CategoricalDistribution, IntDistribution

from harness.core.config import ExperimentConfig
from harness.core.errors import ConfigError
from harness.data.prompt_tokens import PromptLengths, prompt_lengths
from harness.data.prompting import (
    NO_ROOM_FIX,
    Prompter,
    beyond_context,
    cut_to_length,
    max_answer_tokens,
    over_length,
    trained_prompter,
    without_input,
)
from harness.data.suites import Example, Suite, show_path
from harness.evaluation.regression import REGRESSION_SUITES, per_item_scores, task_config
from harness.hosted.client import HostedEndpoint
from harness.hosted.ledger import SpendLedger
from harness.models import loading, sources
from harness.models.device import default_dtype
from harness.models.sources import ModelSource
from harness.sweep.plan import SPLITS, SweepPlan
from harness.training.engines import Engine, HfEngine
from harness.training.methods import METHODS
from harness.training.methods.base import TrialContext


@dataclass(frozen=True)
class SweepData:
    config: ExperimentConfig
    suite: Suite
    train: tuple[Example, ...]
    dev: tuple[Example, ...]
    test: tuple[Example, ...]
    source: ModelSource
    device: str
    dtype: Any
    max_new_tokens: int
    provenance: dict[str, Any]
    """Split hashes, subset sizes, budgets, model: stored with every trial."""
    endpoints: dict[str, HostedEndpoint] = field(default_factory=dict)
    """Hosted endpoints the `api` arms ask, resolved by the plan (keys in memory only)."""
    regression_ids: tuple[str, ...] = ()
    base_regression: tuple[float, ...] = field(default=())
    """Per-item scores of the untouched base model on `regression_ids`, measured once and cached."""
    hosted_ledger: Callable[[str], SpendLedger | None] = lambda endpoint: None
    """Endpoint name -> the study's spend ledger for it (`run.hosted_ledgers`), shared by its workers."""
    experiment: dict[str, Any] = field(default_factory=dict)
    """The experiment config as the study records it (`StudyRecord.experiment`; a follow-up's, its parent's, its seed
    in each trial's parameters): every trial keeps it, since a resume with another file replaces the study's."""
    shot_pool: tuple[Example, ...] | None = None
    """Train as the suite gives it, where `train` holds inputs `training.over_length: truncate` cut: the shots
    prompting arms show come from it, whole (`TrialContext.shot_pool`). None: nothing was cut."""
    engine: Engine = field(default_factory=HfEngine)
    """What answers dev and test: the trial's own model (`hf`), or the study's vLLM server (`engine.py`)."""
    prompt_sizes: str | None = None
    """The dev/test prompts' tokens against the context window, and how many the shared system turn takes (shown by
    the dry run); None when the model states no window."""

    def with_config(self, config: ExperimentConfig) -> SweepData:
        return dataclasses.replace(self, config=config)


def prepare(plan: SweepPlan, source: ModelSource, echo: Callable[[str], None]) -> SweepData:
    config, suite = plan.config, plan.suite
    tokenizer = loading.load_tokenizer(source)
    train, dev, test = (plan.subsets[s] for s in SPLITS)
    whole, cut = train, []
    window = loading.context_window(source, tokenizer)
    if any(METHODS.get(m).trains for m in plan.space.methods):
        check_max_length(config.training.max_length, window, source.name, str(plan.config_path))
        prompter = trained_prompter(tokenizer, suite, config.training)
        if config.training.over_length == "truncate":
            train, cut = fit_lengths(prompter, train, config.training.max_length, str(plan.config_path), echo)
        else:
            check_lengths(prompter, train, config.training.max_length, str(plan.config_path), window)
    max_new = config.generation.max_new_tokens or max_answer_tokens(
        tokenizer, suite.contract, [ex.target for ex in train])
    evaluated = {split: plan.subsets[split] for split in ("dev", "test")}
    answering, served = window, source.name
    if config.generation.engine == "vllm" and (window is None or config.serving.max_model_len < window):
        # the server answers no longer a prompt than it was started for, whatever the model could read
        answering = config.serving.max_model_len
        served = f"{source.name} as vLLM serves it (serving.max_model_len)"
    prompt_sizes = check_eval_lengths(eval_prompter(tokenizer, plan), evaluated, max_new, answering, suite, served,
                                      shots_on_top=_may_add_shots(plan))
    provenance = {
        "data": {
            "suite": suite.name, "suite_version": suite.version, "split_sha256": suite.split_sha256,
            "suite_setup_sha256": suite.setup_sha256,
            "sizes": {s: len(plan.subsets[s]) for s in SPLITS},
            "full_sizes": {s: len(suite.splits[s]) for s in SPLITS},
            "subset_sha256": {s: _ids_hash(plan.subsets[s]) for s in SPLITS},
            **({"train_inputs_cut": cut} if cut else {}),
        },
        "budget": dataclasses.asdict(config.budget),
        "training": dataclasses.asdict(config.training),
        "model": {"name": source.name, "sha256": source.sha256, "note": source.note,
                  "setup_sha256": sources.setup_sha256(source.path)},
        "max_new_tokens": max_new,
    }  # fmt: skip
    return SweepData(config, suite, train, dev, test, source, plan.device,
                     default_dtype(plan.device, config.training.precision), max_new,
                     provenance, dict(plan.endpoints), prompt_sizes=prompt_sizes, shot_pool=whole if cut else None)


def with_base_regression(data: SweepData, echo: Callable[[str], None]) -> SweepData:
    """The base model's score on the forgetting check (loads the model once, then cached), when the check is on."""
    config, provenance = data.config, data.provenance
    if not config.regression.enabled:
        return data
    ids, scores = base_regression(data, echo)
    spec = REGRESSION_SUITES[config.regression.suite]
    provenance["regression"] = {"check": f"lm-eval {spec.task} ({spec.metric})", "n": len(ids)}
    return dataclasses.replace(data, regression_ids=tuple(ids), base_regression=tuple(scores))


def check_max_length(max_length: int, window: int | None, model: str, where: str = "the experiment") -> None:
    """Refuse a `training.max_length` beyond the model's context window: positions past it were never trained, so
    such examples would train the model on what it cannot attend to (or fail mid-trial)."""
    if window is not None and max_length > window:
        raise ConfigError(f"training.max_length: {max_length:,} tokens is beyond {model}'s context window of "
                          f"{window:,}. Set it to at most {window} (--set training.max_length={window}, or in "
                          f"{where}).")


def check_lengths(prompter, train: tuple[Example, ...], max_length: int, where: str = "the experiment",
                  window: int | None = None) -> None:
    """Refuse, before any model loads, train examples that `training.max_length` would cut short
    (`training.over_length: refuse`). The fix it offers stays within the model's context window, `window`."""
    too_long = over_length(prompter, list(train), max_length)
    if too_long:
        (first, longest), count = too_long[0], len(too_long)
        if (alone := without_input(prompter, first)) > max_length:  # no input fits: cutting inputs cannot help
            raise ConfigError(
                f"training.max_length: {count} of {len(train)} train example(s) are longer than {max_length} tokens, "
                f"and with no input at all {first.id} still takes {alone:,} (the instruction, the template and the "
                f"answer), so cutting inputs cannot help. {NO_ROOM_FIX} (--set training.max_length=N, or in "
                f"{where}).")
        if window is None or longest <= window:
            raise_it = f"Raise it with --set training.max_length={longest} (or in {where}), cut"
        else:  # raising it cannot help: the model cannot attend to that many tokens
            raise_it = (f"{longest:,} tokens is beyond the model's context window ({window:,}), so raising it cannot "
                        "help: cut")
        raise ConfigError(
            f"training.max_length: {count} of {len(train)} train example(s) are longer than {max_length} tokens "
            f"(prompt and answer; the longest, {first.id}, has {longest}; all: {_ids(too_long)}), so training would "
            f"cut their answers short. {raise_it} their inputs with --set training.over_length=truncate, or shorten "
            "or drop those examples."
        )


def _local_prompting(plan: SweepPlan) -> list[str]:
    """The sweep's methods that prompt the local model (neither train nor ask an endpoint)."""
    return [m for m in plan.space.methods if not METHODS.get(m).trains and not METHODS.get(m).hosted]


def _may_add_shots(plan: SweepPlan) -> bool:
    """Whether a local prompting arm of this sweep may put shots in its prompts (`shots` above 0 anywhere in its
    space or its enqueued entries)."""
    def above_zero(spec) -> bool:
        if isinstance(spec, CategoricalDistribution):
            return any(isinstance(c, int) and c > 0 for c in spec.choices)
        if isinstance(spec, IntDistribution):
            return spec.high > 0
        return isinstance(spec, int) and spec > 0

    local = _local_prompting(plan)
    return (any(above_zero(plan.space.params[m].get("shots", 0)) for m in local)
            or any(above_zero(e.get(f"{e['method']}.shots", 0)) for e in plan.enqueued if e["method"] in local))


def eval_prompter(tokenizer, plan: SweepPlan) -> Prompter:
    """The longest way a local trial of this sweep frames a dev or test input: with the contract stated where a
    prompting arm runs (its shots come on top), else as trained methods do (`training.include_contract`), so a
    sweep of adapters alone is not refused for a label list its prompts never hold."""
    suite, training = plan.suite, plan.config.training
    if _local_prompting(plan):
        return Prompter(tokenizer, suite.instruction, suite.contract)
    return trained_prompter(tokenizer, suite, training)


def check_eval_lengths(prompter: Prompter, splits: dict[str, tuple[Example, ...]], max_new: int,
                       context: int | None, suite: Suite, model: str, shots_on_top: bool = False) -> str | None:
    """Refuse, before any model loads, dev and test examples whose prompt (instruction, contract and input; shots
    come on top) and answer cannot fit the model's context window: generating them would fail mid-trial, or try to
    allocate memory for a sequence the model was never built for. Returns what the prompts take of the window
    (`prompt_size_text`), or None when the model states no window or there are no examples."""
    examples = [ex for split in splits.values() for ex in split]
    if context is None or not examples:
        return None
    lengths = prompt_lengths(prompter, examples)
    too_long = beyond_context(prompter, examples, max_new, context, lengths)
    if not too_long:
        return prompt_size_text(lengths, prompter, context, max_new, model, shots_on_top)
    if lengths.shared is not None and lengths.shared + max_new >= context:
        raise ConfigError(_shared_too_long(lengths.shared, prompter, context, max_new, suite, model))
    first, longest = too_long[0]
    split, line = first.id.split(":", 1) if ":" in first.id else ("test", first.id)
    where = show_path(suite.path / f"{split}.jsonl")
    raise ConfigError(
        f"{len(too_long)} dev/test example(s) of suite {suite.name} do not fit the context window of {model} "
        f"({context} tokens, with {max_new} for the answer): the longest, {first.id} (line {line} of {where}), has "
        f"a {longest}-token prompt; all: {_ids(too_long)}{_shared_part(lengths, prompter)}. Shorten or drop them "
        "in the suite's split files and run `harness suite validate`, or choose a model with a longer context."
    )


def _shared_part(lengths: PromptLengths, prompter: Prompter) -> str:
    if lengths.shared is None:
        return ""
    return f" (the system turn every prompt shares, {_system_turn(prompter)}, takes {lengths.shared:,} of each)"


def prompt_size_text(lengths: PromptLengths, prompter: Prompter, context: int, max_new: int, model: str,
                     shots_on_top: bool = False) -> str:
    """One line: the dev/test prompts' tokens against the window, and how many of them every prompt shares; with
    `shots_on_top`, that a prompting arm's shots are not counted (they differ by arm and, chosen as similar, by
    input)."""
    longest = max(lengths.tokens)
    shared = ("" if lengths.shared is None else
              f"; the system turn every prompt shares ({_system_turn(prompter)}) takes {lengths.shared:,} of them")
    shots = ", before the shots a prompting arm adds" if shots_on_top else ""
    return (f"dev/test prompts: {min(lengths.tokens):,} to {longest:,} tokens{shots} (n={len(lengths.tokens):,})"
            f"{shared}; {model}'s context window is {context:,} tokens, {max_new} of them kept for the answer")


def _system_turn(prompter: Prompter) -> str:
    contract = prompter.contract
    stated = (f"the contract, with its {len(contract.labels):,} labels" if contract.kind == "label"
              else "the contract") if prompter.include_contract else ""
    return " and ".join(part for part in ("the instruction" if prompter.instruction else "", stated) if part) or \
        "the chat template's own text"


def _shared_too_long(shared: int, prompter: Prompter, context: int, max_new: int, suite: Suite, model: str) -> str:
    contract = prompter.contract
    fewer = (" Fewer labels make it shorter: each is listed in every prompt, so merge rare ones (see `harness suite "
             "stats`). Or leave `prompt` out of the experiment's `space:`: trained methods' prompts hold no label list "
             "(unless training.include_contract is on)." if contract.kind == "label" and prompter.include_contract
             else "")
    return (f"no dev/test example of suite {suite.name} can fit the context window of {model} ({context:,} tokens, "
            f"with {max_new} kept for the answer): the system turn every prompt shares ({_system_turn(prompter)}) "
            f"takes {shared:,} tokens before any input. Shorten the instruction in "
            f"{show_path(suite.path / 'suite.yaml')}, or choose a model with a longer context.{fewer}")


def fit_lengths(prompter, train: tuple[Example, ...], max_length: int, where: str,
                echo: Callable[[str], None]) -> tuple[tuple[Example, ...], list[str]]:
    """`training.over_length: truncate`: cut the inputs of over-long train examples so they fit, and say so."""
    fitted, cut = cut_to_length(prompter, train, max_length, where=f"{where}: training.over_length: truncate")
    if cut:
        dropped = sorted((n - max_length) / n for _, n in cut)
        echo(f"warning: training.over_length: truncate: cut the input of {len(cut)} of {len(train)} train "
             f"example(s) so that prompt and answer fit training.max_length={max_length} tokens (the longest, "
             f"{cut[0][0].id}, had {cut[0][1]}): {_ids(cut)}. Their answers are whole; the cut took about "
             f"{dropped[len(dropped) // 2]:.0%} of a row's tokens on the median, {dropped[-1]:.0%} at most, and the "
             "trained arms never see what lay past it. Prompting arms show train examples whole as shots. `show` "
             "and the report say which trials learned from cut inputs.")
    return fitted, [ex.id for ex, _ in cut]


def _ids(pairs: list[tuple[Example, int]], shown: int = 10) -> str:
    ids = [ex.id for ex, _ in pairs]
    return ", ".join(ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown else "")


def base_regression(data: SweepData, echo: Callable[[str], None], quantized: bool = False
                    ) -> tuple[list[str], list[float]]:
    """The base model's per-item lm-eval scores, measured once per model, check, subset and device, then cached.

    `quantized`: the base as QLoRA loads it (4-bit NF4), so a QLoRA trial's forgetting is measured against the same
    quantized weights it was trained on, and quantization loss never reads as forgetting."""
    check = data.config.regression
    cache = _base_regression_path(data, quantized)
    if cache.exists():
        cached = json.loads(cache.read_text())
        return cached["ids"], cached["scores"]
    what = "the 4-bit (NF4) base model" if quantized else "the base model"
    echo(f"measuring {what} on {check.limit} {check.suite} items through lm-eval (once per results folder: cached "
         f"in {cache.parent})")
    if quantized:
        model = METHODS.get("qlora").load_base(TrialContext(data.config, data.suite, data.train, data.source,
                                                            data.device, data.dtype, data.config.seed))
    else:
        model = loading.load_model(data.source, data.device, data.dtype)
    ids, scores = per_item_scores(model, loading.load_tokenizer(data.source), check.suite, check.limit,
                                  data.config.seed, check.batch_size, check.max_gen_toks)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps({"ids": ids, "scores": scores}))
    tmp.replace(cache)
    return ids, scores


def base_regression_cached(data: SweepData) -> bool:
    """Whether the base model's forgetting check is already measured for this study's check (or is off)."""
    return not data.config.regression.enabled or _base_regression_path(data, quantized=False).exists()


def _base_regression_path(data: SweepData, quantized: bool) -> Path:
    import lm_eval

    check = data.config.regression
    spec = REGRESSION_SUITES[check.suite]
    files = task_config(check.suite)["dataset_kwargs"]["data_files"].values()
    key = hashlib.sha256(json.dumps([
        data.source.sha256, check.suite, spec.metric, check.limit, data.config.seed, data.device,
        check.max_gen_toks, lm_eval.__version__, _file_hash(spec.yaml), [_file_hash(Path(f)) for f in files],
        *(["nf4"] if quantized else []),
    ]).encode()).hexdigest()[:16]
    return Path(data.config.results_dir) / "cache" / f"regression-base-{key}.json"


def _ids_hash(examples: tuple[Example, ...]) -> str:
    return hashlib.sha256("\n".join(ex.id for ex in examples).encode()).hexdigest()


def _file_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
