"""Plan a sweep: resolve and validate everything it will do, before any model is loaded.

Every mistake a user can make in an experiment file is found here and reported with the file, the key and the
fix: a misspelt objective, a rank of 0, a negative learning rate, an `enqueue` value outside the space, a
regression check that overlaps the suite, more shots than the train subset holds, a results folder that cannot be
written. Nothing after this point should fail on the user's input.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.analysis.cost import load_prices
from harness.core.config import VLLM_LORA_RANKS, ExperimentConfig, blame_overrides, experiment_file, load_experiment
from harness.core.errors import ConfigError, HarnessError, ModelError
from harness.core.paths import STORAGE_ENV, probe_writable
from harness.core.text import fold
from harness.core.typed import raise_problems
from harness.data.suite_warnings import suite_warnings
from harness.data.suites import Example, Suite, label_counts, load_suite, seeded_subset
from harness.evaluation.inference import mix_apart, mix_differs_p
from harness.evaluation.regression import REGRESSION_SUITES, item_texts, too_few_to_decide
from harness.evaluation.scorers import higher_is_better
from harness.evaluation.scoring import metric_names
from harness.hosted.client import HostedEndpoint, check_endpoint
from harness.models import sources
from harness.models.device import resolve_device
from harness.models.layers import model_layers
from harness.serving.vllm import ENV_SCRIPT
from harness.sweep.space import SearchSpace, build_space, configurations, enqueue_params
from harness.sweep.storage import check_reachable, normalise
from harness.training.methods import METHODS
from harness.training.methods.dspy_prompt import optimizer_problem
from harness.training.methods.lora import adapter_problems

SPLITS = ("train", "dev", "test")

DEV_TEST_P = 0.001
"""How unlikely dev's and test's label mixes must be under one mix (`mix_differs_p`, 999 re-splits: none reaches
them) before the plan says they differ by design."""
DEV_TEST_MIN_EXAMPLES = 30
"""Examples each of dev and test must hold before their label shares are compared."""


@dataclass(frozen=True)
class SweepPlan:
    config: ExperimentConfig
    config_path: Path
    study: str
    storage: str
    trials: int
    device: str
    space: SearchSpace
    enqueued: tuple[dict[str, Any], ...]
    """Validated `enqueue` entries in Optuna's parameter names; entries of skipped methods are left out."""
    suite: Suite
    subsets: dict[str, tuple[Example, ...]]
    """The seeded train/dev/test subsets every trial uses."""
    maximize: bool
    """The objective's direction, from its metric's `higher_is_better`."""
    endpoints: dict[str, HostedEndpoint] = field(default_factory=dict)
    """The hosted endpoints the `api` arms use, checked to answer; their keys are held in memory only."""
    adapters_checked: bool = True
    """Whether `check_adapters` could read the model's layers at plan time; False for an embedded model not pulled
    yet, which the machine's plan checks once it has pulled it."""

    @property
    def results_dir(self) -> Path:
        return Path(self.config.results_dir)

    @property
    def runnable_trials(self) -> int:
        """The trials that can run: `trials`, or the number of configurations when the space holds fewer, since the
        sweep stops once each has run (a sampled duplicate is recorded as such, never trained)."""
        size = self.space.size()
        return self.trials if size is None else min(self.trials, size)

    def trials_in_words(self) -> str:
        if self.runnable_trials == self.trials:
            return f"{self.trials} trials in total"
        return (f"{self.runnable_trials} trial{'s' if self.runnable_trials > 1 else ''} in total: the space holds "
                f"only {configurations(self.runnable_trials)}, of the {self.trials} trials asked")

    def planned_methods(self) -> list[str]:
        """The methods of the trials this study will run, in order: the enqueued ones first, then the sampler's,
        taken in the space's proportions (which is all that can be said before it samples)."""
        enqueued = [e["method"] for e in self.enqueued][: self.runnable_trials]
        methods = list(self.space.methods)
        return enqueued + [methods[i % len(methods)] for i in range(self.runnable_trials - len(enqueued))]

    def followup_trials(self) -> tuple[int, int]:
        """(repeated seeds, learning-curve points): the most trials each follow-up runs after the sweep. Repeats take
        the `top_k` best finished configurations; the curve needs a trained one."""
        config = self.config
        repeats = min(config.repeats.top_k, self.runnable_trials) * len(config.repeats.seeds)
        trains = any(METHODS.get(m).trains for m in self.space.methods)
        curve = len(config.learning_curve.counts(len(self.subsets["train"]))) if trains else 0
        return repeats, curve

    def describe(self) -> list[str]:
        """What the sweep will run, for --dry-run: the objective and its constraints, each trial (the enqueued ones
        with their values, then what the sampler draws from), and the budgets."""
        objective, budget = self.config.objective, self.config.budget
        direction = "maximise" if self.maximize else "minimise"
        forgetting = (f"regression drop <= {objective.max_regression_drop:g} ({self.config.regression.suite}, "
                      f"{self.config.regression.limit} items)" if self.config.regression.enabled
                      else "regression not checked (regression.enabled: false)")
        contract = self.suite.contract
        free_text = contract.kind == "text"
        complies = ("" if not (free_text and contract.whole_output) else " (here: a number)" if contract.numeric
                    else " (here: any non-empty answer, as free text has no format to check)")
        hallucination = ("hallucination_rate not measured (free text has no closed set or span to check)"
                         if free_text else f"hallucination_rate <= {objective.max_hallucination_rate:g}")
        lines = [f"objective: {direction} dev {objective.metric}, subject to format_compliance >= "
                 f"{objective.min_format_compliance:g}{complies}, {hallucination}, {forgetting}", "trials:"]
        runnable = self.runnable_trials
        for number, entry in enumerate(self.enqueued[:runnable], start=1):
            values = " ".join(f"{k.split('.', 1)[1]}={v}" for k, v in entry.items() if k != "method")
            drawn = [n for n in self.space.searched(entry["method"]) if f"{entry['method']}.{n}" not in entry]
            rest = f"; {', '.join(drawn)} drawn from the space" if drawn else ""
            lines.append(f"  {number}. {' '.join(filter(None, (entry['method'], values)))} (enqueued{rest})")
        sampled = runnable - min(len(self.enqueued), runnable)
        if sampled:
            first = min(len(self.enqueued), runnable) + 1
            span = f"{first}" if sampled == 1 else f"{first}-{runnable}"
            lines.append(f"  {span}. chosen by the {self.config.sampler} sampler from: {', '.join(self.space.methods)} "
                         "(the estimate below takes them in turn)")
        if runnable < self.trials:  # as the sweep says when it starts (sweep/run.py)
            lines.append(f"  the space holds only {configurations(runnable)}, so the sweep stops after {runnable} of "
                         f"the {self.trials} trials asked; widen `space:` (more choices, or a range) to run more")
        lines += self._followups_in_words()
        lines.append(f"budget: {self._steps_in_words()} per trained trial; "
                     f"trial_train_seconds {_limit(budget.trial_train_seconds)}; "
                     f"sweep_minutes {_limit(budget.sweep_minutes)}; fit_minutes {_limit(budget.fit_minutes)}"
                     + (f" (min_steps {budget.min_steps})" if budget.fit_minutes is not None else ""))
        return lines

    def labels_left_out_warning(self) -> str | None:
        """Labels of the dev and test subsets that the train subset has no example of, where the train split does:
        `data.train_limit` drew a subset without them, so no adapter can learn them and no shot can show them (the
        suite's own gaps are `harness suite validate`'s to name)."""
        contract, train = self.suite.contract, self.subsets["train"]
        counts = {split: label_counts(self.subsets[split], contract) for split in SPLITS}
        whole = label_counts(self.suite.splits["train"], contract)
        scored = counts["dev"] + counts["test"]
        dropped = sorted(label for label in scored if not counts["train"][label] and whole[label])
        if not dropped:
            return None
        carried = {split: sum(counts[split][label] for label in dropped) for split in ("dev", "test")}
        shown = ", ".join(list(dropped)[:8]) + (f" and {len(dropped) - 8} more" if len(dropped) > 8 else "")
        return (f"the {len(train)}-example train subset (data.train_limit) has no example of {len(dropped)} of the "
                f"labels its dev and test subsets score ({shown}): {carried['dev']} of the "
                f"{len(self.subsets['dev'])} dev and {carried['test']} of the {len(self.subsets['test'])} test "
                "examples carry a label no adapter can learn and no shot can show. Raise data.train_limit (null takes "
                "the whole train split), or read the scores knowing it.")

    def unbalanced_test_warning(self) -> str | None:
        """The test subset's commonest label, where it holds more than half the examples: always answering it scores
        that share of task accuracy, the floor every score reads against; a test subset of one label cannot tell a
        model that reads its input from one that never does."""
        counts = label_counts(self.subsets["test"], self.suite.contract)
        n = sum(counts.values())
        if not n:
            return None
        label, count = max(counts.items(), key=lambda item: (item[1], item[0]))
        if count * 2 <= n:
            return None
        if count == n:
            return (f"every one of the {n} test examples is `{label}`: a model that always answers `{label}` scores "
                    "100% task accuracy without reading its input, so test cannot tell prompting from fine-tuning. "
                    "Give the suite's test split examples of the other labels (`harness suite init --test-from`, or a "
                    "larger data.test_limit).")
        return (f"{count} of the {n} test examples ({count / n:.0%}) are `{label}`: always answering it scores "
                f"{count / n:.0%} task accuracy, the floor every score reads against.")

    def dev_unlike_test_warning(self) -> str | None:
        """Dev and test subsets holding labels in very different proportions (an agreed test set balanced, dev drawn
        from an imbalanced train file), where trials are chosen on dev task accuracy: the choice then rewards dev's
        mix, up to always answering dev's commonest label, which a helper's full fine-tuning did (8.8% on dev, the
        constant answer's share, 1.3% on test)."""
        if self.config.objective.metric != "task_accuracy":
            return None
        dev, test = (label_counts(self.subsets[split], self.suite.contract) for split in ("dev", "test"))
        n_dev, n_test = sum(dev.values()), sum(test.values())
        if min(n_dev, n_test) < DEV_TEST_MIN_EXAMPLES:  # too few for shares to differ beyond chance
            return None
        labels = [list(counts.elements()) for counts in (dev, test)]
        if mix_differs_p(*labels, seed=self.config.seed) > DEV_TEST_P:  # the mixes differ no more than by chance
            return None
        apart = mix_apart(*labels)
        label, count = max(dev.items(), key=lambda item: (item[1], item[0]))
        # the label whose share moved most, named first: a tie of dev's commonest had named one that barely moved
        moved = max(sorted(set(dev) | set(test)), key=lambda name: abs(dev[name] / n_dev - test[name] / n_test))
        return (f"dev and test hold the labels in different proportions ({apart:.0%} of the examples would have to "
                f"change label to make them alike): `{moved}` is {dev[moved] / n_dev:.0%} of dev and "
                f"{test[moved] / n_test:.0%} of test. Trials are chosen on dev task accuracy, which rewards dev's mix "
                f"(always answering `{label}` scores {count / n_dev:.0%} there). Choose on `objective.metric: "
                "macro_f1`, which weighs every label alike, or give dev the test set's mix (`harness suite init "
                "--dev-from`).")

    def single_modules_warning(self) -> str | None:
        """An adapter arm's `target_modules` written as a YAML list of single modules (`[q_proj, v_proj]`, as PEFT
        takes them): a list in `space:` is a choice, so each trial adapts one module alone, which is rarely meant."""
        for method in self.space.methods:
            spec = self.space.params[method].get("target_modules")
            choices = getattr(spec, "choices", ())
            if len(choices) > 1 and all(isinstance(c, str) and "," not in c and c != "all-linear" for c in choices):
                listed = ", ".join(choices)
                return (f"`space.{method}.target_modules` lists {listed}: a list in `space:` is a choice, so each "
                        f"trial adapts one of them alone. For one adapter on all of them, write them as one string, "
                        f"`target_modules: \"{','.join(choices)}\"`; to choose between sets, list such strings.")
        return None

    def warnings(self) -> list[str]:
        """What loads but is likely a mistake, said before anything runs: the suite's (`suite_warnings`), then the
        plan's own."""
        return [*suite_warnings(self.suite), *filter(None, (
            self.labels_left_out_warning(), self.unbalanced_test_warning(), self.dev_unlike_test_warning(),
            self.forgetting_warning(), self.single_modules_warning()))]

    def forgetting_warning(self) -> str | None:
        """Why the forgetting check cannot decide feasibility (`too_few_to_decide`), or None."""
        check = self.config.regression
        return (too_few_to_decide(check.limit, check.suite, self.config.objective.max_regression_drop)
                if check.enabled else None)

    def _followups_in_words(self) -> list[str]:
        """What runs after the sweep (`sweep/followups.py`): the repeated seeds and the learning curve's points."""
        config, (repeats, curve) = self.config, self.followup_trials()
        if not repeats and not config.learning_curve.sizes:
            return []
        total = repeats + curve
        lines = [f"after the sweep: up to {total} follow-up trial{'' if total == 1 else 's'}" if total
                 else "after the sweep: no follow-up trials"]
        if repeats:
            best = min(config.repeats.top_k, self.runnable_trials)
            which = f"the {best} best configurations on dev, each" if best > 1 else "the best configuration on dev"
            seeds = config.repeats.seeds
            lines.append(f"  repeats: {which} again with seed{'s' if len(seeds) > 1 else ''} "
                         f"{', '.join(map(str, seeds))} (up to {repeats} trial{'s' if repeats > 1 else ''}, study "
                         f"{self.study}+seeds)")
        if config.learning_curve.sizes:
            lines.append(self._curve_in_words(curve))
        return lines

    def _curve_in_words(self, trials: int) -> str:
        if not trials:
            return ("  learning curve: none: it re-trains the best trained configuration, and no method in the space "
                    "trains")
        available = len(self.subsets["train"])
        points = self.config.learning_curve.counts(available)
        sizes = ", ".join(_point_words(count, asked) for count, asked in points.items())
        return (f"  learning curve: the best trained configuration again on {sizes} of the {available} train examples "
                f"({trials} trial{'' if trials == 1 else 's'}, study {self.study}+curve)")

    def _steps_in_words(self) -> str:
        """The step budget and what it means for the train subset: `max_steps` overrides `epochs`, which a user
        reading "epochs 1" beside it would not guess."""
        budget, train = self.config.budget, len(self.subsets["train"])
        per_pass = self.config.training.steps_per_pass(train)
        if budget.max_steps is None:
            return f"epochs {budget.epochs:g} ({math.ceil(budget.epochs * per_pass)} steps of {train} train examples)"
        return (f"{budget.max_steps} steps ({budget.max_steps / per_pass:.1f} passes over {train} train examples; "
                "max_steps overrides epochs)")


def _point_words(count: int, asked: list[int | float]) -> str:
    """A learning-curve point as the sizes that ask for it meant it: `30 (0.5 of them)`, `60 (all; 5000 asked,
    more than the subset holds)`, or the count alone."""
    words = ["all" if size == 1 else f"{size:g} of them" for size in asked if isinstance(size, float)]
    words += [f"{size} asked, more than the subset holds" for size in asked if isinstance(size, int) and size > count]
    return f"{count} ({'; '.join(words)})" if words else str(count)


def _limit(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def plan_sweep(config_path: str | Path, overrides: list[str], study: str | None = None,
               storage: str | None = None, trials: int | None = None) -> SweepPlan:
    with blame_overrides(overrides):  # a bad value from --set is named as such, not looked for in the file
        return _plan(experiment_file(config_path), overrides, study, storage, trials)


def _plan(path: Path, overrides: list[str], study: str | None, storage: str | None,
          trials: int | None) -> SweepPlan:
    config = load_experiment(path, overrides)
    where = str(path)
    if study is not None and not study.strip():
        raise ConfigError("--study '': a study needs a name; give one, or leave --study out to use the experiment's "
                          f"name ({config.name}).")
    study = study or config.name
    _check_study_name(study, where)
    if storage is not None and not storage.strip():  # else the default storage would be used, without a word
        raise ConfigError(f"--storage {storage!r} (or ${STORAGE_ENV}) is empty; give a storage URL (journal:PATH, "
                          "sqlite:///PATH or postgresql://...), or leave both out to keep the study in "
                          f"{config.results_dir}/optuna-journal.log.")
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials {trials}: a study needs at least 1 trial.")
    device = resolve_device(config.device)
    try:
        sources.check_reference(config.model)
    except ModelError as exc:  # name the file and the key as well as the fix
        beside = Path(path).parent / Path(config.model).expanduser()
        hint = (f" A model folder {beside} is beside the experiment file, but a relative `model:` path is read from "
                f"the folder you run harness in ({Path.cwd()}), unlike `suite:`: give `model: {beside.resolve()}`, "
                "or run harness from the folder the path is relative to.") if beside.is_dir() and \
            not Path(config.model).expanduser().is_absolute() else ""
        raise ModelError(f"{where}: `model: {config.model}`: {exc}{hint}") from None
    space, enqueued = _enqueued(config, _for_engine(build_space(config.space, device, where), config), where)
    adapters_checked = check_adapters(config, space, where)
    _check_prices(config, where)
    suite = load_suite(config.suite, named_in=path)
    maximize = _objective_direction(config, suite, where)
    if config.regression.enabled:
        _check_regression(config, suite, where)
    subsets = {
        "train": seeded_subset(suite.splits["train"], config.data.train_limit, config.seed),
        "dev": seeded_subset(suite.splits["dev"], config.data.dev_limit, config.seed),
        "test": seeded_subset(suite.splits["test"], config.data.test_limit, config.seed),
    }
    _check_shots(space, len(subsets["train"]), where)
    _check_search(space, len(subsets["train"]), where)
    _check_contract_options(space, suite, where)
    _check_writable(Path(config.results_dir), where)
    endpoints = _endpoints(config, space, where)
    _check_engine(config, space, where)
    default_storage = f"journal:{Path(config.results_dir) / 'optuna-journal.log'}"
    storage = normalise(storage or default_storage)
    check_reachable(storage)
    return SweepPlan(config, path, study, storage, trials or config.budget.trials, device,
                     space, enqueued, suite, subsets, maximize, endpoints, adapters_checked)


def check_adapters(config: ExperimentConfig, space: SearchSpace, where: str) -> bool:
    """Every `target_modules` choice of every adapter arm (lora, qlora; skipped ones too: the file is wrong either
    way) names layers of the study's model, and its rank fits them, read from the model's config with no weight
    loaded. False when the model's config is not on this machine yet (an embedded model not pulled): the sweep then
    checks again once it has pulled it, still before any weight loads."""
    arms = {m: params for m, params in space.params.items() if "target_modules" in params}
    if not arms:
        return True
    layers = model_layers(config.model)
    if layers is None:
        return False
    problems = []
    for method, params in arms.items():
        targets = params["target_modules"]
        key = f"space.{method}.target_modules"
        choices = ([(f"{key}[{i}]", t) for i, t in enumerate(targets.choices)] if hasattr(targets, "choices")
                   else [(key, targets)])
        problems += adapter_problems(choices, f"space.{method}.r", max(reach(params["r"])), layers, where)
    raise_problems(where, problems)
    return True


def _check_prices(config: ExperimentConfig, where: str) -> None:
    """`prices:` is read by `harness payback` after the sweep; a typo in it must not wait until then."""
    if not config.prices:
        return
    try:
        load_prices(overrides=config.prices)
    except HarnessError as exc:
        raise ConfigError(f"{where}: `prices` (overrides of the bundled price table): {exc}") from None


def _enqueued(config: ExperimentConfig, space: SearchSpace, where: str) -> tuple[SearchSpace, tuple[dict, ...]]:
    """The `enqueue` entries in Optuna's names, each checked to lie in the space. An entry for a skipped method (null
    in the space, or one this machine or engine cannot run) is dropped, so the sweep goes ahead without it as asked;
    the method's skip reason, printed before the sweep and by --dry-run, names the entries dropped with it."""
    kept, dropped, seen = [], {}, {}
    for i, raw in enumerate(config.enqueue):
        entry = enqueue_params(raw, space, where, i)
        if entry is None:
            dropped.setdefault(raw["method"], []).append(f"enqueue[{i}]")
            continue
        if (first := seen.setdefault(json.dumps(entry, sort_keys=True, default=str), i)) != i:
            # Optuna queues a configuration once: the second would be planned, estimated, and never run
            raise ConfigError(f"{where}: `enqueue[{i}]` repeats `enqueue[{first}]`; a study runs each configuration "
                              "once. Remove it (for more draws of a method, raise `budget.trials`; for the same "
                              "configuration on other seeds, `repeats:`).")
        kept.append(entry)
    if dropped:
        notes = {m: (f"its enqueued trial {names[0]} is dropped too" if len(names) == 1 else
                     f"its enqueued trials {', '.join(names)} are dropped too") for m, names in dropped.items()}
        space = dataclasses.replace(space, skipped={m: f"{why.rstrip('.')}; {notes[m]}." if m in notes else why
                                                    for m, why in space.skipped.items()})
    return space, tuple(kept)


def _check_study_name(study: str, where: str) -> None:
    # trial ids are "<study>/<number>", and follow-up studies are "<study>+seeds": keep the name plain
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", study):
        raise ConfigError(f"{where}: study name {study!r} must start with an ASCII letter or digit and use only "
                          "ASCII letters (a-z, A-Z), digits, '.', '_' or '-' (no '/', '+' or spaces); change `name:` "
                          "or pass --study NAME.")
    if len(study) > MAX_STUDY_NAME:
        raise ConfigError(f"{where}: study name {study[:20]!r}... is {len(study)} characters long; give one of at "
                          f"most {MAX_STUDY_NAME} (`name:` or --study NAME). Its adapters are saved in a folder of "
                          "that name, with room kept for a follow-up's suffix, within a file system's 255.")


MAX_STUDY_NAME = 160
"""A study's adapters go in results/artifacts/<study>/, and its follow-ups are <study>+seeds and the like: a name of
300 characters passed every check and failed each trained trial with "File name too long" after its training."""


def _objective_direction(config: ExperimentConfig, suite: Suite, where: str) -> bool:
    metric, available = config.objective.metric, metric_names(suite)
    if metric not in available:
        close = difflib.get_close_matches(metric, available, n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        raise ConfigError(f"{where}: `objective.metric: {metric}` is not a metric suite {suite.name} produces on "
                          f"dev.{hint} Choose one of: {', '.join(available)}.")
    direction = higher_is_better(metric)
    if direction is None:  # a scorer without a direction could not be optimised: refuse rather than guess
        raise ConfigError(f"{where}: `objective.metric: {metric}` has no known direction (higher_is_better).")
    return direction


def _check_regression(config: ExperimentConfig, suite: Suite, where: str) -> None:
    check = config.regression.suite
    if check not in REGRESSION_SUITES:
        raise ConfigError(f"{where}: `regression.suite: {check}` is not a bundled check; use one of "
                          f"{', '.join(sorted(REGRESSION_SUITES))}, or set regression.enabled: false.")
    # Training on the items of the forgetting check would hide the forgetting: refuse, and say how to fix it.
    checked = item_texts(check)
    overlap = [ex.id for split in SPLITS for ex in suite.splits[split] if fold(ex.input) in checked]
    if overlap:
        raise ConfigError(
            f"{where}: {len(overlap)} examples of suite {suite.name} (e.g. {', '.join(overlap[:3])}) are also items "
            f"of the `{check}` regression check, so the check would measure memorisation, not forgetting. Use "
            f"another check (`regression.suite: piqa`), or set regression.enabled: false."
        )


def _check_shots(space: SearchSpace, train_size: int, where: str) -> None:
    for method in ("prompt", "api"):
        spec = space.params.get(method, {}).get("shots")
        if spec is None or method not in space.methods:
            continue
        most = max(reach(spec))
        if most > train_size:
            raise ConfigError(f"{where}: `space.{method}.shots` reaches {most}, but the train subset holds only "
                              f"{train_size} examples to draw shots from; lower the shots or raise data.train_limit.")


def _check_search(space: SearchSpace, train_size: int, where: str) -> None:
    """A searching arm (`dspy`, `api_dspy`) holds a validation slice out of train and draws its shots from the rest:
    both must fit, no candidate may bootstrap more shots than it shows, and its optimizer must take the parameters
    given (`optimizer_problem`)."""
    for method in (m for m in space.methods if METHODS.get(m).searches):
        params, defaults = space.params.get(method, {}), METHODS.get(method).Params()
        held_out, demos, bootstrapped = (reach(params.get(name, getattr(defaults, name)))
                                         for name in ("val_size", "max_demos", "max_bootstrapped"))
        val = max(held_out)
        if val + max(demos) > train_size:
            raise ConfigError(f"{where}: the {method} arm holds out `val_size` {val} train examples to score its "
                              f"candidate prompts and draws up to `max_demos` {max(demos)} shots from the rest, but "
                              f"the train subset holds only {train_size}; lower space.{method}.val_size or raise "
                              "data.train_limit.")
        if max(bootstrapped) > min(demos):
            raise ConfigError(f"{where}: `space.{method}.max_bootstrapped` reaches {max(bootstrapped)}, more than the "
                              f"{min(demos)} shots `max_demos` allows a prompt; set max_bootstrapped to at most "
                              "max_demos.")
        problem = optimizer_problem(method, lambda name: reach(params.get(name, getattr(defaults, name))), where)
        if problem:
            raise ConfigError(problem)


CONTRACT_OPTIONS = ("constrained", "structured")
"""Method parameters that ask for answers within the output contract: constrained decoding (local models) and
structured output (hosted ones)."""


def _check_contract_options(space: SearchSpace, suite: Suite, where: str) -> None:
    """Constrained decoding and structured output need a schema, which free text does not have."""
    if suite.contract.kind != "text":
        return
    options = [(method, option) for method in METHODS.names() for option in CONTRACT_OPTIONS
               if option in {f.name for f in dataclasses.fields(METHODS.get(method).Params)}]
    wrong = [f"space.{method}.{option}" for method, option in options
             if method in space.methods and True in space_values(space.params.get(method, {}).get(option, False))]
    if wrong:  # every one at once: a scaffolded experiment sets several, and one error per run is a slow loop
        listed = ", ".join(f"`{key}`" for key in wrong)
        raise ConfigError(f"{where}: {listed} {'asks' if len(wrong) == 1 else 'ask'} for decoding within a label or "
                          f"JSON contract, but suite {suite.name} is free text ({suite.contract.kind}); set "
                          f"{'it' if len(wrong) == 1 else 'each'} to false, and drop the option from any `enqueue` "
                          "entry that sets it.")


VLLM_SERVES = ("prompt", "dspy", "lora", "api", "api_dspy")
"""What `generation.engine: vllm` evaluates: the base model prompted (a `dspy` arm searches its shots in process,
then asks the server with them), LoRA adapters loaded into the same server, and
hosted arms (which have their own engine). A fully fine-tuned model would need a server of its own; QLoRA's 4-bit
base is bitsandbytes', which vLLM does not load as it was trained."""


def _for_engine(space: SearchSpace, config: ExperimentConfig) -> SearchSpace:
    """With `generation.engine: vllm`, the methods vLLM cannot serve are skipped, with the reason, as QLoRA is on a
    machine without CUDA."""
    if config.generation.engine != "vllm":
        return space
    skipped = {m: f"generation.engine: vllm serves {', '.join(VLLM_SERVES)} arms; a fully fine-tuned or 4-bit model "
                  "would need a vLLM server of its own (evaluate it with generation.engine: hf)"
               for m in space.methods if m not in VLLM_SERVES}
    if not skipped:
        return space
    kept = tuple(m for m in space.methods if m not in skipped)
    return dataclasses.replace(space, methods=kept, skipped={**space.skipped, **skipped})


def _check_engine(config: ExperimentConfig, space: SearchSpace, where: str) -> None:
    if config.generation.engine != "vllm":
        return
    serving = config.serving
    if not serving.vllm_python and not serving.vllm_url:
        raise ConfigError(f"{where}: `generation.engine: vllm` needs `serving.vllm_python`, the python of vLLM's own "
                          f"environment (`bash {ENV_SCRIPT}` builds one and prints it), or `serving.vllm_url`, "
                          "a running server; or set generation.engine: hf.")
    if serving.vllm_python and not serving.vllm_url and not os.access(serving.vllm_python, os.X_OK):
        raise ConfigError(f"{where}: `serving.vllm_python: {serving.vllm_python}` is not an executable python; build "
                          f"vLLM's environment with `bash {ENV_SCRIPT}` and give the path it prints.")
    if not space.methods:
        raise ConfigError(f"{where}: `generation.engine: vllm` serves {', '.join(VLLM_SERVES)} arms, and the space "
                          "has none of them; add one, or set generation.engine: hf.")
    largest = max(reach(space.params["lora"]["r"])) if "lora" in space.methods else 0
    if largest > serving.max_lora_rank:
        raise ConfigError(f"{where}: `space.lora.r` reaches {largest}, above `serving.max_lora_rank: "
                          f"{serving.max_lora_rank}`, so vLLM would refuse those adapters after they trained. Raise "
                          f"serving.max_lora_rank to {min(r for r in VLLM_LORA_RANKS if r >= largest)} (vLLM takes "
                          f"{', '.join(map(str, VLLM_LORA_RANKS))}), or lower the rank.")
    from harness.serving.vllm import VllmError, VllmServer, VllmSettings, vllm_version

    try:
        if serving.vllm_url:
            server = VllmServer.attach(serving.vllm_url, serving_name())
            if largest:  # a server that cannot load adapters would be found after the first LoRA trained
                server.check_adapter_loading()
        else:  # a python without vLLM would be found at the first trial, after a LoRA trained for minutes
            vllm_version(VllmSettings(python=serving.vllm_python))
    except VllmError as exc:
        key = "serving.vllm_url" if serving.vllm_url else "serving.vllm_python"
        raise ConfigError(f"{where}: `{key}`: {exc}") from None


def serving_name() -> str:
    """The base model's name on the study's vLLM server (a running one must serve it as `--served-model-name base`)."""
    return "base"


def hosted_endpoints(space: SearchSpace) -> dict[str, list[str]]:
    """Hosted method (`api`, `api_dspy`) -> the endpoint names its `space` entry can pick."""
    return {m: space_values(space.params[m].get("endpoint", "")) for m in space.methods if METHODS.get(m).hosted}


def _endpoints(config: ExperimentConfig, space: SearchSpace, where: str) -> dict[str, HostedEndpoint]:
    """Every endpoint a hosted arm may pick: named in `endpoints:`, its key in the environment, its price known,
    and answering. Checked now, so a missing key or a wrong URL never waits behind a local model's training."""
    picks = hosted_endpoints(space)
    if not picks:
        return {}
    for method, listed in picks.items():
        if "" in listed:
            raise ConfigError(f"{where}: `space.{method}.endpoint` is missing: name one (or a list) of the entries "
                              f"under `endpoints:` ({', '.join(config.endpoints) or 'none defined yet'}).")
        unknown = [n for n in listed if n not in config.endpoints]
        if unknown:
            known = ", ".join(config.endpoints) or "none: add `endpoints: {NAME: {base_url, model, api_key_env}}`"
            raise ConfigError(f"{where}: `space.{method}.endpoint` names {unknown[0]!r}, which is not under "
                              f"`endpoints:` (defined: {known}).")
    names = list(dict.fromkeys(n for listed in picks.values() for n in listed))
    cached = [n for n in names if config.endpoints[n].cache]
    if config.redaction.enabled and cached:
        raise ConfigError(f"{where}: `redaction` is on, but `endpoints.{cached[0]}.cache` keeps every request and "
                          "answer on disk unredacted (results/cache/hosted). Set `cache: false` on that endpoint, or "
                          "turn redaction off if the cache may hold customer data.")
    return resolve_endpoints(config, names, where, Path(config.results_dir) / "cache" / "hosted")


def resolve_endpoints(config: ExperimentConfig, names: list[str], where: str,
                      cache_dir: Path) -> dict[str, HostedEndpoint]:
    """The named endpoints, each with its key from the environment, its price, and a check that it answers."""
    prices = load_prices(overrides=config.prices or None)
    out = {}
    for name in names:
        endpoint = config.endpoints[name]
        key = os.environ.get(endpoint.api_key_env)
        if not (key or "").strip():
            state = "is not set" if key is None else "is empty" if not key else "holds only whitespace"
            raise ConfigError(
                f"{where}: endpoint `{name}` reads its key from ${endpoint.api_key_env}, which {state} (the "
                f"variable `endpoints.{name}.api_key_env` names). Export it "
                f"first (`export {endpoint.api_key_env}=...`); the harness never writes it anywhere. A local server "
                "that needs no key takes any word, e.g. none.")
        usd = None
        if endpoint.price is not None:
            try:
                price = prices.api(endpoint.price)
            except HarnessError as exc:
                raise ConfigError(f"{where}: `endpoints.{name}.price`: {exc}") from None
            usd = (price.input_usd_per_1m, price.output_usd_per_1m)
        elif endpoint.budget_usd is not None:
            raise ConfigError(f"{where}: `endpoints.{name}.budget_usd` needs `endpoints.{name}.price`, the price-table "
                              "entry its tokens are priced with (or use budget_tokens).")
        problem = check_endpoint(name, endpoint, key)
        if problem:
            raise ConfigError(f"{where}: {problem}. Check `endpoints.{name}.base_url` and the server, or leave the "
                              "api arm out of `space`.")
        out[name] = HostedEndpoint(name, endpoint, key, usd, cache_dir)
    return out


def space_values(spec) -> list:
    """Every value a space entry can take (its choices, or the fixed value)."""
    return list(spec.choices) if hasattr(spec, "choices") else [spec]


def reach(spec) -> list:
    """The values that bound a space entry: its choices, a range's two ends, or the fixed value."""
    return [spec.low, spec.high] if hasattr(spec, "low") else space_values(spec)


MIN_FREE_BYTES = 512 * 2**20
"""Free space a sweep needs where its results go: the database, the study journal and a few adapters."""


def _check_writable(results: Path, where: str) -> None:
    """Write and remove a small file where results will go (in its nearest existing folder, so a plan creates no
    folder): an unwritable or full disk fails here, not after the first trial has trained."""
    try:
        existing = probe_writable(results)
        free = shutil.disk_usage(existing).free
        if free < MIN_FREE_BYTES:
            raise OSError(28, f"only {free / 2**20:.0f} MB free, and a sweep needs at least "
                              f"{MIN_FREE_BYTES / 2**20:.0f} MB for its database and adapters")
    except OSError as exc:
        raise ConfigError(f"{where}: cannot write results to {results} ({exc.strerror or exc}); set `results_dir:` "
                          "to a writable folder (or free some space) and run again.") from None
