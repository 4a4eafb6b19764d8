"""Measure the machine before planning: a few real training steps of each method the sweep will train, on the
study's own model, data and batch shape, in each precision that is sound here, one generation batch of each arm, and
a few items of the forgetting check on each trained arm (both once for the precisions that train the same weights:
on a CPU, fp32 and bf16 autocast); cached per machine, thread count and model, so it runs once.

Machines differ more than their names say: on an AVX2-only EPYC, bf16 autocast ran a LoRA step in 52 s against
3.3 s in fp32, while a CPU with AVX512-BF16 runs it faster in bf16. So nothing is assumed:
- `training.precision: auto` becomes the fastest precision timed here; bf16 is timed only where it is native (a GPU
  that supports it, a CPU with AVX512-BF16 or AMX), because elsewhere it is slow and buys nothing;
- every trial's expected time comes from these timings (`estimate.py`), never from another machine's rates;
- a trial whose step budget cannot finish inside its time cap is found before any trial runs (`under_trained`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from optuna.distributions import CategoricalDistribution

from harness.core.config import BudgetConfig, ExperimentConfig
from harness.core.errors import HarnessError
from harness.core.records import DataProvenance
from harness.data.prompt_tokens import common_prefix, count_tokens, generated_prefix, generation_batches, shared_head
from harness.data.prompting import Prompter
from harness.data.suites import Example, seeded_subset
from harness.evaluation.regression import per_item_scores
from harness.models import loading, sources
from harness.models.device import default_dtype, free_memory, is_out_of_memory, machine_name, native_bf16
from harness.sweep.plan import SweepPlan
from harness.sweep.prepare import SweepData
from harness.sweep.space import method_params
from harness.sweep.trial import trial_context
from harness.training.generate import MIN_SHARED_PREFIX
from harness.training.methods import METHODS
from harness.training.methods.base import LocalCandidate
from harness.training.train_report import WARMUP_STEPS

TIMED_STEPS = 6
"""Steps timed per method and precision, after one warm-up step (the first step pays for allocations), on examples
drawn from the whole train subset. Their mean is kept: a slow step is time the trial spends too, and three steps'
median over the first examples read a bf16 step at 1.13 s that ran at 1.4-1.7 s in the trial (AMD EPYC with
AVX512-BF16, 2026-12-05)."""
REGRESSION_ITEMS = 32
"""Forgetting-check items timed per trained arm (two batches): lm-eval's fixed cost is spread over few items, so
the per-item time errs high, on the safe side of a plan."""
BUSY_LOAD = 1.5
"""Load average per core above which the calibration says its timings were taken on a busy CPU: the sweep itself
keeps each core at about 1 while it loads and tokenises."""
VERSION = 10
"""Bumped when what is measured changes, so an old cache entry is never read as a new one (`_load` reads it as
nothing, and it is measured again). 6: generation writes into a reserved key/value cache (training/kv_cache.py),
x1.13-1.18 faster on a CPU. 7: a generation batch is split into its prompt tokens and its decoding, and each arm's
dev and test prompts are counted, so that a split's estimate follows their lengths (`estimate.py`). 8: each timing
keeps the configuration it timed, and the key no longer holds the space's arms or the forgetting check's size. 9: the
key no longer holds the data limits (each timing's prompt counts say which dev and test subsets they are for, and are
counted again, without a model, for others), and a searching arm's configuration leaves out what steers its search
alone. 10: at least MIN_CALIBRATION_PROMPTS prompts are timed, in batches of the study's size."""
MIN_CALIBRATION_PROMPTS = 4
"""Prompts a generation timing takes at the least. At `generation.batch_size: 1` the calibration timed one prompt,
which shares all but its last token with itself: the whole prompt went into the prefix encoded once, and the batch's
time fell on one "padded" token, 0.5 s a token, so the estimate read 13x what the sweep took (long contracts, the
batch size the long-prompt warning advises). Several prompts share what a split's prompts share, the system turn."""


@dataclass(frozen=True)
class Timing:
    method: str
    precision: str
    step_seconds: float | None
    """Mean wall seconds of one optimizer step (None for an arm that does not train)."""
    generate_seconds: float
    """Wall seconds per example of one generation batch at the study's batch size, with the arm's own prompts."""
    regression_seconds: float | None = None
    """Wall seconds per item of the forgetting check (lm-eval) on the trained model; None where nothing trains or
    the check is off."""
    token_seconds: float | None = None
    """Wall seconds per padded prompt token of a generation batch: the same batch's prompts, timed with a one-token
    answer (so, their encoding), over the tokens it pads them to. None in a timing measured before it was split."""
    decode_seconds: float | None = None
    """Wall seconds per example of the rest of the batch: decoding the answers (the whole batch's time less its
    prompts' encoding, per row)."""
    prompt_tokens: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """Split ("dev", "test") -> each example's prompt tokens with this arm's own prompts, in the subset's order."""
    shared_tokens: dict[str, int] = field(default_factory=dict)
    """Split -> the prefix every prompt of it shares, which generation encodes once (0: none worth caching)."""
    configuration: str = ""
    """The arm's configuration it timed (`representative`, as JSON): a cached timing stands for that one only."""
    counted: dict[str, str] = field(default_factory=dict)
    """Split -> the subset (`DataProvenance.subset_sha256`) whose prompts `prompt_tokens` counted: other data limits
    count theirs again (`_recount`), keeping the timed rates, which do not depend on which examples a split holds."""

    def split_seconds(self, split: str, size: int, batch_size: int, left_out: frozenset[int] = frozenset()) -> float:
        """Expected wall seconds to generate `split` (of `size` examples) in batches of `batch_size`, without the
        examples at the indices `left_out`.

        Assumed: a batch costs `token_seconds` per prompt token it holds once padded (rows x its longest prompt, as
        `generate` pads them, after the shared prefix, encoded once per split), plus `decode_seconds` per row. Both
        are linear fits of one timed batch: encoding and attention cost more than linearly at thousands of tokens, so
        a batch of very long prompts takes at least this long. Without counted prompts (an older timing, a split it
        did not count) every example costs the batch's mean, `generate_seconds`."""
        tokens = self.prompt_tokens.get(split)
        if self.token_seconds is None or self.decode_seconds is None or tokens is None or len(tokens) != size:
            return (size - len(left_out)) * self.generate_seconds
        kept = [n for i, n in enumerate(tokens) if i not in left_out]
        if not kept:
            return 0.0
        shared = min(self.shared_tokens.get(split, 0), min(kept) - 1)
        padded = sum(rows * width for rows, width in generation_batches(kept, shared, batch_size))
        return self.token_seconds * (shared + padded) + self.decode_seconds * len(kept)


@dataclass(frozen=True)
class Calibration:
    machine: str
    """The CPU or GPU model, with what torch uses of it."""
    precision: str
    """What the sweep trains in: the experiment's `training.precision`, or what `auto` chose here."""
    timings: tuple[Timing, ...]
    notes: tuple[str, ...] = ()
    """Why a precision was not timed (bf16 not native here), and what was chosen."""
    measured_at: str = ""
    cached: bool = False
    path: str | None = None
    busy: str | None = None
    """How busy the CPU was while it was measured, when other work shared its cores (the timings then read slow)."""
    kept: bool = False
    """`precision` is what a resumed study's trials trained in (`keep_study_precision`), not the fastest timed."""

    def timing(self, method: str, precision: str | None = None) -> Timing | None:
        wanted = precision or self.precision
        found = [t for t in self.timings if t.method == method]
        return next((t for t in found if t.precision == wanted), found[0] if found else None)

    def lines(self) -> list[str]:
        """`lora: 1.9 s/step fp32, 0.8 s/step bf16 autocast: using bf16`, one line per method, then the notes."""
        out = []
        for method in dict.fromkeys(t.method for t in self.timings):
            timed = [t for t in self.timings if t.method == method]
            if timed[0].step_seconds is None:
                out.append(f"{method}: {timed[0].generate_seconds:.2f} s per generated example{_split(timed[0])}")
                continue
            steps = ", ".join(f"{t.step_seconds:.2f} s/step {_label(t.precision)}" for t in timed)
            mine = self.timing(method)
            forgetting = (f"; forgetting check {mine.regression_seconds:.2f} s per item"
                          if mine.regression_seconds else "")
            # one precision trains every method: it may not be this method's own fastest, which is said
            fastest = min(timed, key=lambda t: t.step_seconds).precision
            own = "" if fastest == self.precision or len(timed) < 2 else \
                f" (as the study's trials trained; {method} ran faster in {fastest})" if self.kept else \
                f" (over all trained methods; {method} alone ran faster in {fastest})"
            out.append(f"{method}: {steps}: using {self.precision}{own}; {mine.generate_seconds:.2f} s per generated "
                       f"example{_split(mine)}{forgetting}")
        return out + list(self.notes) + ([f"warning: {self.busy}"] if self.busy else [])



def calibrate(plan: SweepPlan, data: SweepData, echo: Callable[[str], None] = print,
              fresh: bool = False) -> Calibration:
    """The machine's timings for this study: read from the cache when this machine measured them before, measured
    now (and added to the cache) for any arm or precision it has not, or for all of them when `fresh`."""
    config = plan.config
    precisions = candidate_precisions(config.training.precision, plan.device)
    # what can run: the enqueued trials' methods, and every method of the space once the sampler picks any trial
    sampled = plan.trials > len(plan.enqueued)
    arms = [m for m in dict.fromkeys([*plan.planned_methods(), *(plan.space.methods if sampled else ())])
            if not METHODS.get(m).hosted]
    machine = machine_name(plan.device)
    path = _cache_path(plan, data, machine)
    # one cache file holds every arm's timings, each for the configuration it timed: a space that gains or loses an
    # arm re-times only what is new
    configured = {m: _configuration(plan, m) for m in arms}
    cached, when, load = ([], "", None) if fresh else _load(path, echo)
    if cached and _busy(load) and not _busy(cpu_load(plan.device)):  # its slow readings would plan this idle run
        echo(f"the cached calibration of {machine} was measured on a busy CPU (load {load[0]:.1f} on {load[1]} "
             "cores); the CPU is not busy now, so it is measured again")
        cached, when, load = [], "", None
    known = [t for t in cached if configured.get(t.method) == t.configuration]
    recounted = _recount(plan, data, known)
    if recounted != known:  # other data limits: the rates stand, the prompts are theirs
        others = [t for t in cached if t not in known]
        cached, known = [*others, *recounted], recounted
        _save(path, machine, cached, when, load)
    wanted = [(m, p) for m in arms for p in (precisions if METHODS.get(m).trains else precisions[:1])]
    missing = [(m, p) for m, p in wanted if not any(t.method == m and t.precision == p for t in known)]
    timings = [t for t in known if (t.method, t.precision) in wanted]
    answering = _answering(known, missing, plan.device)
    # an arm that neither trains nor answers in weights of its own (prompting, named a precision it does not train
    # in, as each worker of a sweep is) takes a timing already known: nothing is measured for it, nor said to be
    measured = [arm for arm in missing if METHODS.get(arm[0]).trains or arm in answering]
    if measured:
        echo(f"calibrating on {machine}: {_measuring(measured, answering, config)} (cached for this machine, model, "
             "suite and batch shape, whatever the data limits)")
        load = cpu_load(plan.device)
    measured_at = when
    for method, precision in missing:
        alike = None if (method, precision) in answering else \
            _answers_alike([*known, *timings], method, precision, plan.device)
        if (method, precision) not in measured:  # it answers as that one did, and is derived again next time
            timings.append(dataclasses.replace(alike, precision=precision))
            continue
        timed = _timed(plan, data, method, precision, alike)
        timings.append(dataclasses.replace(timed, configuration=configured[method]))
        load = _busier(load, cpu_load(plan.device))  # contention that starts mid-measurement counts too
        # saved as each arm is timed: a calibration interrupted after minutes keeps what it measured
        measured_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        now = {(t.method, t.precision, t.configuration) for t in timings}
        kept = [t for t in cached if (t.method, t.precision, t.configuration) not in now]  # other arms' and configs'
        _save(path, machine, [*kept, *timings], measured_at, load)
    timings.sort(key=lambda t: wanted.index((t.method, t.precision)))
    chosen, notes = _choose(config.training.precision, plan.device, precisions, timings)
    return Calibration(machine, chosen, tuple(timings), tuple(notes), measured_at, not measured, str(path),
                       _busy(load))


def cpu_load(device: str) -> tuple[float, int] | None:
    """(runnable processes over the last minute, cores) on a CPU run; None on a GPU, or where the OS does not say.
    Work sharing the cores slows every timed step, and the cache would keep the slow figures."""
    try:
        return (os.getloadavg()[0], os.cpu_count() or 1) if device == "cpu" else None
    except OSError:
        return None


def _busier(load: tuple[float, int] | None, now: tuple[float, int] | None) -> tuple[float, int] | None:
    """The higher of two load samples: precisions are timed one after another, so load that came and went between
    them can decide which is chosen."""
    return now if load is None or (now is not None and now[0] > load[0]) else load


def _busy(load: tuple[float, int] | None) -> str | None:
    if load is None or load[0] <= BUSY_LOAD * load[1]:
        return None
    return (f"the CPU was busy while these timings were measured (load up to {load[0]:.1f} on {load[1]} cores), so "
            "they may read slow, and the plan with them, and the precision chosen from them may not be the fastest; "
            "re-measure when it is idle with `--recalibrate`.")


def candidate_precisions(requested: str, device: str) -> list[str]:
    """What may be timed: the one the experiment named, or for `auto` fp32 and, where it is native, bf16."""
    if requested != "auto":
        return [requested]
    return ["fp32", "bf16"] if native_bf16(device) else ["fp32"]


def apply(data: SweepData, calibration: Calibration) -> SweepData:
    """The sweep's data with the calibrated precision in its config (and in every trial's provenance)."""
    training = dataclasses.replace(data.config.training, precision=calibration.precision)
    config = dataclasses.replace(data.config, training=training)
    provenance = {**data.provenance, "training": {**data.provenance.get("training", {}),
                                                  "precision": calibration.precision},
                  "calibration": {"machine": calibration.machine, "precision": calibration.precision,
                                  "lines": calibration.lines(), "measured_at": calibration.measured_at}}
    return dataclasses.replace(data, config=config, dtype=default_dtype(data.device, calibration.precision),
                               provenance=provenance)


def keep_study_precision(calibration: Calibration, requested: str, earlier: str | None, device: str) -> Calibration:
    """`auto` on a resumed study keeps the precision its trained trials trained in: timings measured again (another
    day, a busier machine) had the same file train its next trials in bf16 after fp32, so its trials no longer
    compared alike. A new study takes the fastest."""
    if requested != "auto" or earlier is None or earlier == calibration.precision:
        return calibration
    if earlier not in candidate_precisions("auto", device):
        return dataclasses.replace(calibration, notes=(*calibration.notes, (
            f"warning: this study's trials trained in {earlier}, which is not native here, so its next trials train "
            f"in {calibration.precision}, and its trials differ in precision. Run a new study (--study NEW_NAME) to "
            "compare them alike.")))
    notes = [n for n in calibration.notes if not n.startswith("precision: ")]
    notes.append(f"precision: {earlier}, as this study's trials trained (the fastest timed here now is "
                 f"{calibration.precision}): a study keeps one precision so that its trials compare alike; a new "
                 "study (--study NEW_NAME) takes the fastest")
    return dataclasses.replace(calibration, precision=earlier, notes=tuple(notes), kept=True)


def _choose(requested: str, device: str, precisions: list[str], timings: list[Timing]) -> tuple[str, list[str]]:
    notes = []
    if requested == "auto" and "bf16" not in precisions:
        what = "this GPU" if device == "cuda" else "this CPU (no AVX512-BF16 or AMX)"
        notes.append(f"bf16: not native on {what}, so not timed: autocast would run many times slower than fp32")
    if requested == "bf16" and not native_bf16(device):
        notes.append("warning: training.precision is bf16, which is not native here: autocast runs many times "
                     "slower than fp32 on such a machine. Set training.precision: auto (or fp32).")
    if len(precisions) == 1:
        return precisions[0], notes
    cost = {p: sum(t.step_seconds for t in timings if t.precision == p and t.step_seconds) for p in precisions}
    if not any(cost.values()):  # nothing trains: the weights' dtype is all precision decides
        return ("bf16" if device == "cuda" else "fp32"), notes
    chosen = min(precisions, key=lambda p: cost[p])
    notes.append(f"precision: {chosen}, the fastest timed here")
    return chosen, notes


def _answering(known: list[Timing], missing: list[tuple[str, str]], device: str) -> set[tuple[str, str]]:
    """The arms of `missing` whose answers are timed (a generation batch, the forgetting check): each the first of
    its method to answer in its weights' dtype. The others train only, and take those timings (`_answers_alike`)."""
    seen, answering = list(known), set()
    for method, precision in missing:
        if _answers_alike(seen, method, precision, device) is None:
            answering.add((method, precision))
        seen.append(Timing(method, precision, None, 0.0))
    return answering


def _answers_alike(timings: list[Timing], method: str, precision: str, device: str) -> Timing | None:
    """A timing of `method` whose model answers in the same weights as it would in `precision`. The precision is
    the training's: on a CPU the weights are fp32 in both (bf16 is an autocast, taken off when training ends), so a
    bf16-trained adapter answers, and is checked for forgetting, exactly as fast as an fp32-trained one, and timing
    both spent a generation batch and the forgetting items again for a figure that was already known."""
    dtype = default_dtype(device, precision)
    return next((t for t in timings if t.method == method and default_dtype(device, t.precision) == dtype), None)


def _measuring(missing: list[tuple[str, str]], answering: set[tuple[str, str]], config: ExperimentConfig) -> str:
    """What the calibration is about to time, in words."""
    def named(arms: list[tuple[str, str]]) -> str:
        return ", ".join(f"{m} ({p})" for m, p in arms)

    trained = [(m, p) for m, p in missing if METHODS.get(m).trains]
    answered = [arm for arm in missing if arm in answering]
    checked = [arm for arm in answered if arm in trained] if config.regression.enabled else []
    parts = [f"{TIMED_STEPS} timed steps of {named(trained)}" if trained else "",
             f"a generation batch of {named(answered)}" if answered else "",
             f"{min(REGRESSION_ITEMS, config.regression.limit)} forgetting-check items of {named(checked)}"
             if checked else ""]
    return "; ".join(part for part in parts if part)


def _timed(plan: SweepPlan, data: SweepData, method: str, precision: str, answers: Timing | None) -> Timing:
    """`_time`, with a failure that is not already a HarnessError told as one that names the configuration it ran:
    the trials of that configuration would fail the same way, and the user needs the key to change, not a
    traceback from inside PEFT or transformers."""
    try:
        return _time(plan, data, method, precision, answers)
    except HarnessError:
        raise
    except Exception as exc:
        free_memory(plan.device)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no message"
        settings = ", ".join(f"{k}={v}" for k, v in representative(plan, method).items() if k != "method")
        raise HarnessError(
            f"calibration: {method} ({precision}) failed before any trial ran, on the configuration it times first "
            f"({settings or 'its defaults'}): {type(exc).__name__}: {first}. Every trial of that configuration would "
            f"fail the same way: change it in `space.{method}` (or the `enqueue` entry it comes from), or leave "
            f"{method} out of `space`. If the configuration looks right, this is a bug in the harness: report it "
            "with this message.") from exc


def _time(plan: SweepPlan, data: SweepData, method: str, precision: str, answers: Timing | None = None) -> Timing:
    """A few real steps of `method` (its first planned configuration) in `precision`, then one generation batch and
    a few items of the forgetting check; or, given `answers` (a timing whose model answers in the same weights),
    the steps only, with its answers' timings."""
    config = plan.config
    training = dataclasses.replace(config.training, precision=precision, eval_every_steps=0)
    steps = WARMUP_STEPS + TIMED_STEPS
    budget = BudgetConfig(trials=1, max_steps=steps, epochs=1000.0, trial_train_seconds=None)
    trial_config = dataclasses.replace(config, training=training, budget=budget)
    per_step = training.batch_size * training.gradient_accumulation
    # drawn from the whole subset, not its first examples: splits are often grouped by label (banking77's are), and
    # the first label's short messages timed a demo step at 1.3 s that ran at 1.5-1.7 s over the whole train subset
    variant = dataclasses.replace(data, config=trial_config,
                                  train=seeded_subset(data.train, per_step * steps, config.seed),
                                  dtype=default_dtype(plan.device, precision))
    params = method_params(representative(plan, method), "calibration")
    context = trial_context(variant)
    if METHODS.get(method).searches:  # not the search: a prompt with as many shots as its candidates show at most
        context = dataclasses.replace(context, recorded_shots=tuple(ex.id for ex in variant.train[:params.max_demos]))
    try:
        candidate = METHODS.get(method).prepare(context, params)
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        free_memory(plan.device)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarnessError(f"calibration: {method} ran out of memory on {plan.device} ({first}) in its first {steps} "
                           f"steps at training.batch_size={training.batch_size} and training.max_length="
                           f"{training.max_length}, so every trial of it would too. Lower training.batch_size (raise "
                           "gradient_accumulation to keep the effective batch) or training.max_length, or use "
                           "qlora.") from None
    step_seconds = None
    if candidate.train_report is not None:
        step_seconds = candidate.train_report.mean_step_seconds
        if step_seconds is None:
            raise HarnessError(f"calibration: {method} ran {candidate.train_report.steps} steps, fewer than the "
                               f"{steps} it needs to time; the train subset holds {len(data.train)} examples.")
    if answers is not None:
        del candidate
        free_memory(plan.device)
        return dataclasses.replace(answers, method=method, precision=precision, step_seconds=step_seconds)
    generate_seconds = _generate_seconds(candidate, data, f"calibrate {method}")
    token_seconds, decode_seconds = _split_batch(candidate, data, generate_seconds, f"calibrate {method}")
    regression_seconds = _time_regression(config, candidate) if candidate.trained else None
    del candidate
    free_memory(plan.device)
    return _counted(plan, data, Timing(method, precision, step_seconds, generate_seconds, regression_seconds,
                                       token_seconds, decode_seconds))


def _recount(plan: SweepPlan, data: SweepData, timings: list[Timing]) -> list[Timing]:
    """`timings`, each with the prompts of this sweep's dev and test subsets counted, where it counted others; once
    per method (its precisions frame the same prompts)."""
    subsets, counts = _subsets(data), {}
    out = []
    for t in timings:
        if t.counted != subsets and t.method not in counts:
            counts[t.method] = _counted(plan, data, t)
        out.append(t if t.counted == subsets else dataclasses.replace(
            t, prompt_tokens=counts[t.method].prompt_tokens, shared_tokens=counts[t.method].shared_tokens,
            counted=subsets))
    return out


def _counted(plan: SweepPlan, data: SweepData, timing: Timing) -> Timing:
    """`timing` with each dev and test prompt's tokens as its arm frames them (`Method.framing`: no model loads),
    shot pools drawn from the whole train subset, as a trial's are; a searching arm with its first `max_demos`
    train examples, as many shots as its candidates show at most."""
    method = METHODS.get(timing.method)
    params = method_params(representative(plan, timing.method), "calibration")
    context = trial_context(data)
    if method.searches:
        context = dataclasses.replace(context, recorded_shots=tuple(ex.id for ex in data.train[:params.max_demos]))
    prompter = method.framing(context, params, loading.load_tokenizer(data.source))
    if prompter is None:
        return dataclasses.replace(timing, prompt_tokens={}, shared_tokens={}, counted=_subsets(data))
    counts = {split: _prompt_tokens(prompter, examples) for split, examples in (("dev", data.dev),
                                                                                ("test", data.test))}
    return dataclasses.replace(timing, prompt_tokens={split: tokens for split, (tokens, _) in counts.items()},
                               shared_tokens={split: shared for split, (_, shared) in counts.items()},
                               counted=_subsets(data))


def _subsets(data: SweepData) -> dict[str, str]:
    subsets = DataProvenance.of(data.provenance).subset_sha256
    return {split: str(subsets.get(split, "")) for split in ("dev", "test")}


def _generate_seconds(candidate: LocalCandidate, data: SweepData, desc: str) -> float:
    """Seconds per example of a generation batch of dev examples: the faster of two. A model's first batch pays
    one-time costs (kernel choice, the allocator's first blocks) that a trial's many batches do not; on a bf16 LoRA
    one read 9x slow, enough to cut steps for nothing. A warm-up batch of the same examples with their inputs cut to
    200 characters did not take those costs away: the demo's prompting arm then read 3.0 s per example in its first
    whole batch, and 1.9 and 2.3 in the next two (a busy 2-core Intel Xeon, 2026-12-05)."""
    config = data.config
    batch = _calibration_batch(data)
    return min(_batch_seconds(candidate, batch, data.max_new_tokens, config.generation.batch_size, desc)
               for _ in range(2))


def _calibration_batch(data: SweepData) -> tuple[Example, ...]:
    """The prompts a generation timing answers: a batch of the study's size, or MIN_CALIBRATION_PROMPTS in batches
    of it."""
    config = data.config
    return seeded_subset(data.dev or data.train, max(config.generation.batch_size, MIN_CALIBRATION_PROMPTS),
                         config.seed)


def _split_batch(candidate: LocalCandidate, data: SweepData, generate_seconds: float,
                 desc: str) -> tuple[float | None, float | None]:
    """(seconds per padded prompt token, seconds per example of decoding) of the calibration batch: its prompts timed
    alone, with a one-token answer (the faster of two, after the whole batches have warmed the model up), over the
    tokens `generate` pads them to; the rest of its `generate_seconds` is decoding. A prompt costs in proportion to
    its tokens, an answer does not, so a split of long prompts is estimated from the first and its count from the
    second. None, None when the batch holds no prompt token to time."""
    batch, batch_size = _calibration_batch(data), data.config.generation.batch_size
    tokens, shared = _prompt_tokens(candidate.prompter, batch)
    padded = sum(rows * width for rows, width in generation_batches(tokens, shared, batch_size))
    if not padded:
        return None, None
    per_example = min(_batch_seconds(candidate, batch, 1, batch_size, f"{desc} prompts") for _ in range(2))
    return per_example * len(batch) / padded, max(0.0, generate_seconds - per_example)


def _prompt_tokens(prompter: Prompter, examples: tuple[Example, ...]) -> tuple[tuple[int, ...], int]:
    """Each example's prompt tokens as `prompter` frames them, and the prefix `generate` would encode once for them."""
    if not examples:
        return (), 0
    texts = [prompter.prompt(ex) for ex in examples]
    head = shared_head(prompter)
    tokens = count_tokens(prompter.tokenizer, texts, head)
    return tuple(tokens), generated_prefix(tokens, common_prefix(prompter.tokenizer, texts, head), MIN_SHARED_PREFIX)


def _batch_seconds(candidate: LocalCandidate, batch: tuple[Example, ...], max_new_tokens: int, batch_size: int,
                   desc: str) -> float:
    """Seconds per example of generating `batch` in batches of `batch_size`. Every answer carries its batch's wall
    time (`Generation.batch` says which), without the shared prefix, which is encoded once per split, not per
    batch: each batch's time is counted once."""
    answers = candidate.answer(batch, max_new_tokens, batch_size, desc=desc)
    per_batch = {a.batch: a.latency_s for a in answers}
    return sum(per_batch.values()) / max(1, len(batch))


def _time_regression(config: ExperimentConfig, candidate: LocalCandidate) -> float | None:
    """Seconds per item of the forgetting check on the trained model, timed on a few of its items."""
    check = config.regression
    if not check.enabled:
        return None
    items = min(REGRESSION_ITEMS, check.limit)
    began = time.perf_counter()
    per_item_scores(candidate.model, candidate.tokenizer, check.suite, items, config.seed, check.batch_size,
                    check.max_gen_toks)
    return (time.perf_counter() - began) / items


def _configuration(plan: SweepPlan, method: str) -> str:
    """What a timing of `method` stands for: its `representative` configuration, as JSON, without a searching arm's
    search-only parameters (`SearchParams.SEARCH_ONLY`), which change how many answers it asks for (the estimate
    counts them), not what one answer costs."""
    search_only = getattr(METHODS.get(method).Params, "SEARCH_ONLY", frozenset())
    timed = {k: v for k, v in representative(plan, method).items() if k not in search_only}
    return json.dumps(timed, sort_keys=True, default=str)


def representative(plan: SweepPlan, method: str) -> dict[str, Any]:
    """The configuration of `method` the sweep runs first: its first enqueued entry, else the first value of each
    parameter in the space (which also fills what the entry leaves out, as the space's fixed values do a trial's)."""
    chosen: dict[str, Any] = {"method": method}
    for name, spec in plan.space.params.get(method, {}).items():
        if isinstance(spec, CategoricalDistribution):
            chosen[name] = spec.choices[0]
        elif hasattr(spec, "low"):
            chosen[name] = spec.low
        else:
            chosen[name] = spec
    entry = next((e for e in plan.config.enqueue if e.get("method") == method), {})
    return {**chosen, **{k: v for k, v in entry.items() if k != "method"}}


def _cache_path(plan: SweepPlan, data: SweepData, machine: str) -> Path:
    config = plan.config
    t = config.training
    # the forgetting check's per-item time does not depend on how many items it scores
    check = {k: v for k, v in dataclasses.asdict(config.regression).items() if k != "limit"}
    shape = [t.batch_size, t.gradient_accumulation, t.max_length, t.include_instruction, t.include_contract,
             t.padding_free, t.gradient_checkpointing, config.generation.batch_size, data.max_new_tokens, check]
    versions = [metadata.version(p) for p in ("torch", "transformers", "peft", "trl")]
    # the threads too: a worker of `sweep --workers N` on a CPU gets a share of the cores, and runs slower
    # the suite's text too: what a step and an answer cost follows its examples' lengths, its instruction and contract.
    # Not the data limits: the timed examples are drawn across the train subset, whichever it is, and each timing's
    # prompt counts are counted again for other dev and test subsets (`_recount`)
    prompts = [data.suite.split_sha256, data.suite.instruction, data.suite.contract]
    key = json.dumps([VERSION, machine, plan.device, torch.get_num_threads(), versions, data.source.sha256, shape,
                      prompts], sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return sources.cache_dir() / "calibration" / f"{digest}.json"


def _load(path: Path, echo: Callable[[str], None]) -> tuple[list[Timing], str, tuple[float, int] | None]:
    """What the cache holds for this key, when it was measured, and the CPU's load then; an older entry holds
    nothing, and an unreadable one nothing either, said to `echo`: measured again, it may plan otherwise."""
    if not path.exists():
        return [], "", None
    try:
        raw = json.loads(path.read_text())
        if raw.get("version") != VERSION:
            return [], "", None
        load = raw.get("load")
        return ([_timing(t) for t in raw["timings"]], str(raw.get("measured_at", "")),
                (float(load[0]), int(load[1])) if load else None)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        echo(f"the cached calibration {path} could not be read ({type(exc).__name__}: {exc}); this machine is "
             "measured again, and the file rewritten")
        return [], "", None


def _timing(raw: dict[str, Any]) -> Timing:
    """A cached timing, its counted prompts as tuples again (JSON keeps lists)."""
    tokens = {split: tuple(int(n) for n in counts) for split, counts in (raw.get("prompt_tokens") or {}).items()}
    shared = {split: int(n) for split, n in (raw.get("shared_tokens") or {}).items()}
    counted = {str(split): str(sha) for split, sha in (raw.get("counted") or {}).items()}
    return Timing(**{**raw, "prompt_tokens": tokens, "shared_tokens": shared, "counted": counted})


def _save(path: Path, machine: str, timings: list[Timing], measured_at: str, load: tuple[float, int] | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"version": VERSION, "machine": machine, "measured_at": measured_at,
                               "threads": torch.get_num_threads(), "load": load,
                               "timings": [dataclasses.asdict(t) for t in timings]}, indent=2))
    tmp.replace(path)  # whole or not at all, even with two workers calibrating at once


def _split(timing: Timing) -> str:
    if timing.token_seconds is None or timing.decode_seconds is None:
        return ""
    return f" ({timing.token_seconds * 1000:.2f} ms per padded prompt token, {timing.decode_seconds:.2f} s decoding)"


def _label(precision: str) -> str:
    return "bf16 autocast" if precision == "bf16" else precision
