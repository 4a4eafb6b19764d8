"""What a sweep, a served query and a hosted-model query cost, from measured seconds and a dated price table.

Pure functions over the store's typed views (`TrialView`, `RunView`). Nothing here opens a database or loads a
model (`harness.analysis.payback` has the one helper that reads a Store). Every result carries `assumptions`:
{name: {"value", "unit", "source"}} for each number it used, where source is "measured in trial X", "measured in
run R", "price table <version>", "user input" or "assumed, not measured".

Rules:
- A trial costs its measured device seconds (train_seconds, a local prompt search's seconds, eval_seconds) times
  the hourly price of the device it ran on; a hosted arm costs the tokens its endpoint billed, its prompt search's
  included. A trial without timings (failed early, or interrupted) costs its wall time finished_at - started_at.
  A trial still running has no finish time and is left out of a sweep's cost, with the reason.
- A sweep costs all its finished trials: complete, pruned and failed ones all held the device.
- A trial that ran on the CPU is priced as CPU, per core-hour times the cores it computed on: its run's torch
  threads, at most its cpu_count (or per instance-hour if the table says `per: instance`); never at a GPU rate. A
  GPU is found by its name: see `device_price_key`.
- Serving is priced from the test split's measured throughput at the evaluated batch size: the device is
  assumed busy at that batch size; idle time is not priced (give a fixed monthly hosting cost for that).
- A hosted model is priced per 1M input and output tokens, times the tokens per query a prompting trial
  measured with the local tokenizer, times `token_ratio` (hosted tokens per local token, default 1.0).
- A hosted arm is priced per query on the tokens its endpoint reported. An endpoint that reported none leaves
  nothing measured to price: `hosted_cost` refuses rather than price its answers at 0 tokens. Its spend counts
  those requests at their worst case (prompt bytes + max_tokens, as its budget held them), labelled as the upper
  bound it is.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from harness.analysis.speed import timing_text
from harness.core.errors import HarnessError
from harness.core.records import ExampleView, HostedUsage, RunView, Throughput, TrialView
from harness.core.yamlfile import read_yaml

ASSUMED = "assumed, not measured"
USER = "user input"
PER = ("gpu", "core", "instance")
SERVING_SPLIT = "test"


def assumption(value: Any, unit: str, source: str) -> dict:
    """One entry of an `assumptions` dict: the number, its unit, and where it came from."""
    return {"value": value, "unit": unit, "source": source}


def measured(trial_id: str) -> str:
    return f"measured in trial {trial_id}"


# -- the price table -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DevicePrice:
    key: str
    usd_per_hour: float
    per: str
    """What one hour buys: "gpu" (one GPU), "core" (one CPU core) or "instance" (the whole machine)."""
    match: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class ApiPrice:
    name: str
    input_usd_per_1m: float
    output_usd_per_1m: float
    token_ratio: float | None
    """Hosted tokens per local token for this model; None uses the table's `token_ratio`."""
    source: str


@dataclass(frozen=True)
class PriceTable:
    version: str
    date: str
    currency: str
    devices: dict[str, DevicePrice]
    apis: dict[str, ApiPrice]
    token_ratio: float
    token_ratio_source: str
    origin: str
    """The file it was read from."""

    @property
    def source(self) -> str:
        return f"price table {self.version}"

    def device(self, key: str) -> DevicePrice:
        if key not in self.devices:
            raise HarnessError(
                f"{self.origin} has no device price `{key}`. Add one under `devices:` (in that file or in the "
                f"price overrides), e.g. {{devices: {{{key}: {{usd_per_hour: 1.0, per: gpu, match: [...]}}}}}}."
            )
        return self.devices[key]

    def api(self, name: str) -> ApiPrice:
        if name not in self.apis:
            raise HarnessError(
                f"no price for hosted model `{name}` in {self.origin} (known: {', '.join(self.apis) or 'none'}). "
                f"Add it under `apis:`, e.g. {{apis: {{{name}: {{input_usd_per_1m: 1.0, output_usd_per_1m: 4.0}}}}}}."
            )
        return self.apis[name]

    def to_dict(self) -> dict:
        return asdict(self)


_TOP_KEYS = ("version", "date", "currency", "devices", "apis", "token_ratio")
_DEVICE_KEYS = ("usd_per_hour", "per", "match")
_API_KEYS = ("input_usd_per_1m", "output_usd_per_1m", "token_ratio")


def bundled_prices_path() -> Path:
    return Path(str(resources.files("harness.analysis").joinpath("prices.yaml")))


def load_prices(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> PriceTable:
    """Read the price table (the bundled one when `path` is None) and apply `overrides` on top of it.

    `overrides` has the file's layout and may be partial: {"devices": {"H100": {"usd_per_hour": 2.0}}} changes
    one price and keeps the rest of that entry; a new key adds an entry (then every field is required).
    Entries touched by an override are recorded as "user input" wherever they are used.
    """
    origin = Path(path) if path is not None else bundled_prices_path()
    if not origin.is_file():
        raise HarnessError(f"{origin}: no such price table. Copy {bundled_prices_path()} and edit it.")
    raw = read_yaml(origin, HarnessError)
    _check_keys(raw, _TOP_KEYS, str(origin), "top level")
    raw, user = _merge(raw, overrides or {})
    for key in ("version", "date"):
        if not raw.get(key):
            raise HarnessError(f"{origin}: `{key}` is missing. A price table is versioned and dated; add it.")
    where = f"{origin}" + (" with overrides" if overrides else "")
    source = f"price table {raw['version']}"
    devices = {}
    for key, entry in (raw.get("devices") or {}).items():
        _check_keys(entry, _DEVICE_KEYS, where, f"devices.{key}")
        per = entry.get("per", "gpu")
        if per not in PER:
            raise HarnessError(f"{where}: `devices.{key}.per` must be one of {', '.join(PER)}, got {per!r}.")
        match = entry.get("match") or []
        if not isinstance(match, list) or not all(isinstance(m, str) for m in match):
            raise HarnessError(f"{where}: `devices.{key}.match` must be a list of names, e.g. [\"H100\"].")
        devices[str(key)] = DevicePrice(str(key), _number(entry, "usd_per_hour", where, f"devices.{key}"), per,
                                        tuple(match), USER if ("devices", key) in user else source)
    apis = {}
    for name, entry in (raw.get("apis") or {}).items():
        _check_keys(entry, _API_KEYS, where, f"apis.{name}")
        ratio = entry.get("token_ratio")
        apis[str(name)] = ApiPrice(
            str(name), _number(entry, "input_usd_per_1m", where, f"apis.{name}"),
            _number(entry, "output_usd_per_1m", where, f"apis.{name}"),
            None if ratio is None else _number(entry, "token_ratio", where, f"apis.{name}", positive=True),
            USER if ("apis", name) in user else source,
        )  # fmt: skip
    ratio = _number(raw, "token_ratio", where, "top level", positive=True) if "token_ratio" in raw else 1.0
    ratio_source = USER if ("token_ratio",) in user else source if "token_ratio" in raw else ASSUMED
    currency = str(raw.get("currency") or "USD")  # `currency: null` is no currency given
    if currency.strip().upper() != "USD":
        raise HarnessError(f"{where}: `currency: {raw['currency']!r}`: prices are in US dollars, and every figure "
                           "payback prints is labelled so. Convert the table's prices to USD and set `currency: USD` "
                           "(or remove it); a figure in another currency would be printed as dollars.")
    return PriceTable(str(raw["version"]), str(raw["date"]), currency, devices, apis,
                      ratio, ratio_source, str(origin))


def _merge(raw: dict, overrides: Mapping[str, Any]) -> tuple[dict, set[tuple]]:
    _check_keys(overrides, _TOP_KEYS, "price overrides", "top level")
    merged, user = copy.deepcopy(raw), set()
    for top, value in overrides.items():
        if top in ("devices", "apis"):
            if not isinstance(value, Mapping):
                raise HarnessError(f"price overrides: `{top}` must be a mapping of name -> fields.")
            section = merged.setdefault(top, {}) or {}
            merged[top] = section
            for name, fields in value.items():
                if not isinstance(fields, Mapping):
                    raise HarnessError(f"price overrides: `{top}.{name}` must be a mapping of fields.")
                section[name] = {**(section.get(name) or {}), **fields}
                user.add((top, name))
        else:
            merged[top] = value
            user.add((top,))
    return merged, user


def _check_keys(raw: Any, known: tuple[str, ...], where: str, at: str) -> None:
    if not isinstance(raw, Mapping):
        raise HarnessError(f"{where}: `{at}` must be a mapping, got {type(raw).__name__}.")
    unknown = [k for k in raw if k not in known]
    if unknown:
        raise HarnessError(f"{where}: unknown key `{unknown[0]}` in `{at}`. Known keys: {', '.join(known)}.")


def _number(raw: Mapping, key: str, where: str, at: str, positive: bool = False) -> float:
    value = raw.get(key)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and (
        value > 0 if positive else value >= 0)
    if not ok:
        raise HarnessError(f"{where}: `{at}.{key}` must be a finite number {'> 0' if positive else '>= 0'}, got "
                           f"{value!r}.")
    return float(value)


# -- which price a device gets ---------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"[a-z0-9]+", text.casefold()))


def device_price_key(device: str | None, device_name: str | None, prices: PriceTable, where: str = "") -> str:
    """The price-table key for a device.

    A CPU run (device "cpu", or device_name "cpu") is "CPU". Otherwise an entry matches when every word of one
    of its `match` patterns is a word of device_name (case-insensitive, words split at punctuation); the
    pattern with the most words wins, then the earlier entry. No match is a HarnessError naming the fix.
    """
    if device == "cpu" or (device_name or "").strip().casefold() == "cpu":
        prices.device("CPU")
        return "CPU"
    if not device_name:
        raise HarnessError(f"{where or 'a trial'} ran on {device or 'an unknown device'} but its run recorded no "
                           "device_name, so no price applies. Pass the trial's run (Store.run).")
    words = set(_words(device_name))
    best: tuple[int, int, str] | None = None
    for order, (key, price) in enumerate(prices.devices.items()):
        for pattern in price.match:
            needed = _words(pattern)
            if needed and words.issuperset(needed) and (best is None or (len(needed), -order) > best[:2]):
                best = (len(needed), -order, key)
    if best is None:
        raise HarnessError(
            f"no price for device {device_name!r}{f' ({where})' if where else ''} in {prices.origin}. Add a price for "
            f"it under `devices:` in the price table or the price overrides, e.g. "
            f"{{devices: {{MY-GPU: {{usd_per_hour: 1.0, per: gpu, match: [{device_name!r}]}}}}}}."
        )
    return best[2]


def device_rate(trial: TrialView, run_view: RunView | None, prices: PriceTable,
                in_process: bool = True) -> tuple[str, float, dict]:
    """(price key, dollars per hour for everything the trial held, assumptions) for the trial's device.
    `in_process`: the work priced ran in the harness's own process (training, its own generate), so a CPU run holds
    the cores of its torch threads; False for a separate server (vLLM), which holds the machine's cores."""
    tid, run = trial.id, trial.run_id or "?"
    device = trial.device or (run_view.device if run_view else None)
    device_name = run_view.device_name if run_view else None
    key = device_price_key(device, device_name, prices, where=f"trial {tid}, run {run}")
    price = prices.device(key)
    notes = {"price_key": assumption(key, "price-table key", f"device {device_name or device!r} of run {run}")}
    units, unit_name = 1.0, price.per
    if price.per == "core":
        units, source = _cores_used(run_view, run, in_process)
        notes["cores"] = assumption(units, "CPU cores", source)
    notes[f"price.{key}"] = assumption(price.usd_per_hour, f"USD per {unit_name}-hour", price.source)
    return key, price.usd_per_hour * units, notes


def _cores_used(run_view: RunView | None, run: str, in_process: bool) -> tuple[float, str]:
    """The cores a CPU run computed on, and where that comes from: its torch threads, at most its cpu_count, for work
    in the harness's process. A run held to one thread on a 2-core machine trained and generated on one core, so its
    speeds are one core's, and pricing both cores would double what each query cost. A server of its own (vLLM binds
    its own cores, whatever the harness's threads) holds the machine."""
    if run_view is None or not run_view.cpu_count:
        return 1.0, ASSUMED
    cores, threads = run_view.cpu_count, run_view.env.torch_threads
    if not in_process:
        return float(cores), f"measured in run {run} (cpu_count): the serving engine, a process of its own, holds them"
    if threads and threads < cores:
        return float(threads), (f"measured in run {run}: its {threads} torch thread(s), on a machine of {cores} "
                                "cores (its speeds are those threads')")
    return float(cores), f"measured in run {run} (cpu_count)"


# -- training: a trial and a sweep ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialCost:
    trial_id: str
    status: str
    price_key: str
    seconds: float
    usd_per_hour: float
    """For everything the trial held: one GPU, or every core of a CPU run."""
    usd: float
    assumptions: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def hosted(self) -> bool:
        """A hosted arm's cost: API tokens at its price entry, no device time."""
        return self.price_key.startswith("api:")

    def evidence(self) -> dict:
        """What a sweep's total shows of this trial: its own inputs (seconds, cores, tokens), keyed
        `name.trial_id`, and each price it used, under the table's name (one entry however many trials used it).
        Its usd and price key are derived, so the sweep states its own."""
        own = {f"{name}.{self.trial_id}": entry for name, entry in self.assumptions.items()
               if name not in _DERIVED and not name.startswith("price.")}
        return {**own, **{name: entry for name, entry in self.assumptions.items() if name.startswith("price.")}}


_DERIVED = ("usd", "price_key")


def device_seconds(trial: TrialView) -> tuple[float, str]:
    """Measured device seconds of a trial and where they came from; wall time when it has no timings."""
    tid = trial.id
    if trial.train_seconds is not None or trial.eval_seconds is not None:
        search = " + its prompt search's seconds" if trial.local_search_seconds else ""
        return trial.device_seconds, f"{measured(tid)} (train_seconds{search} + eval_seconds)"
    if trial.started_at and trial.finished_at:
        seconds = (trial.finished_at - trial.started_at).total_seconds()
        return max(seconds, 0.0), (
            f"{measured(tid)}: wall time finished_at - started_at, as it has no train/eval timings (an "
            "interrupted trial is marked finished when the next sweep starts, so this may overstate)"
        )
    raise HarnessError(f"trial {tid} ({trial.status}) has no timings and no finish time to price. If its "
                       "process died, re-run the sweep command: it marks the trial failed with a finish time.")


def trial_cost(trial: TrialView, run: RunView | None, prices: PriceTable) -> TrialCost:
    """Device seconds x the hourly price of the device the trial ran on; for a hosted arm, the tokens its endpoint
    reported for the requests it sent, at its price entry (answers from the cache cost nothing)."""
    if trial.device == "hosted":
        return _hosted_trial_cost(trial, prices)
    # with the vLLM engine, the study's server held its cores for the whole sweep, through training too
    key, rate, notes = device_rate(trial, run, prices, in_process=trial.engine is None or trial.engine.name == "hf")
    seconds, source = device_seconds(trial)
    usd = seconds / 3600 * rate
    notes = {"seconds": assumption(seconds, "device seconds", source), **notes,
             "usd": assumption(usd, "USD", "derived: seconds / 3600 x USD per hour")}
    return TrialCost(trial.id, trial.status, key, seconds, rate, usd, notes)


def _hosted_trial_cost(trial: TrialView, prices: PriceTable) -> TrialCost:
    usage = trial.hosted
    if usage is None:
        raise HarnessError(f"trial {trial.id} asked a hosted endpoint but recorded no usage (it stopped before its "
                           "first answer, or was recorded by an older release), so its spend is unknown.")
    price = _endpoint_price(trial.id, usage, prices)
    src = (f"{measured(trial.id)}: reported by endpoint {usage.endpoint} for {usage.requests} requests sent "
           f"({usage.cache_hits} answers from the cache cost nothing)")
    if worst := worst_case_requests(trial):
        src = (f"{measured(trial.id)}: endpoint {usage.endpoint} reported no token usage for {worst} of its "
               f"{usage.requests} requests sent, counted at their worst case (prompt bytes + max_tokens, as its "
               f"budget held them): an upper bound, not tokens billed ({usage.cache_hits} answers from the cache cost "
               "nothing)")
    notes = {"prompt_tokens": assumption(usage.prompt_tokens, "hosted tokens", src),
             "completion_tokens": assumption(usage.completion_tokens, "hosted tokens", src)}
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    if (search := trial.prompt_search) is not None:  # its prompt search asked the same endpoint, before dev
        found = f"{measured(trial.id)}: its prompt search's {search.calls:,} calls, as the endpoint reported them"
        notes["search_prompt_tokens"] = assumption(search.prompt_tokens, "hosted tokens", found)
        notes["search_completion_tokens"] = assumption(search.completion_tokens, "hosted tokens", found)
        prompt, completion = prompt + search.prompt_tokens, completion + search.completion_tokens
    usd = (prompt * price.input_usd_per_1m + completion * price.output_usd_per_1m) / 1e6
    notes[f"price.{price.name}"] = assumption((price.input_usd_per_1m, price.output_usd_per_1m),
                                              "USD per 1M input, output tokens", price.source)
    notes["usd"] = assumption(usd, "USD", "derived: tokens x price per 1M")
    return TrialCost(trial.id, trial.status, f"api:{price.name}", 0.0, 0.0, usd, notes)  # no device time here


def worst_case_requests(trial: TrialView) -> int:
    """Requests of a hosted arm that its endpoint answered without token usage, which its spend counts at their worst
    case. Recorded as `HostedUsage.unreported`; a record written before that has 0 there, and then every request
    when tokens were counted but no split recorded one (an endpoint that reports usage reports a prompt token for
    every answer)."""
    usage = trial.hosted
    if usage is None or usage.unreported:
        return 0 if usage is None else usage.unreported
    splits = [t for t in trial.throughput.values() if t.examples]
    none_recorded = splits and all(t.prompt_tokens == 0 and t.completion_tokens == 0 for t in splits)
    return usage.requests if none_recorded and usage.requests and usage.prompt_tokens else 0


def unreported_answers(trial: TrialView, split: str = SERVING_SPLIT, counted: int | None = None) -> int:
    """A hosted arm's answers on `split` without reported usage: `counted` (from its stored examples,
    `answers_without_usage`) when given, else all of them when the split recorded answers but no token at all."""
    if counted is not None:
        return counted
    found = trial.throughput.get(split)
    return found.examples if found and found.examples and not (found.prompt_tokens or found.completion_tokens) else 0


def answers_without_usage(examples: Iterable[ExampleView]) -> int:
    """A hosted arm's stored answers that carry no token count and no error: its endpoint reported no usage for them
    (a refused request has no tokens either, but has its error, and was not billed)."""
    return sum(1 for e in examples if e.error is None and (e.prompt_tokens is None or e.completion_tokens is None))


def _endpoint_price(trial_id: str, usage: HostedUsage, prices: PriceTable) -> ApiPrice:
    if usage.price is None:
        raise HarnessError(f"trial {trial_id} asked endpoint {usage.endpoint} ({usage.model}), which had no `price` "
                           "entry, so its tokens cannot be priced. Price its recorded tokens now with --hosted-price "
                           "NAME (an entry under `apis:` of the price table, or of a --prices FILE of your own), or "
                           "weigh against a local prompting arm with --baseline STUDY/N. A `price:` added to the "
                           "endpoint prices only trials run after it.")
    return prices.api(usage.price)


@dataclass(frozen=True)
class SweepCost:
    usd: float
    seconds: float
    trials: tuple[TrialCost, ...]
    usd_by_status: dict[str, float]
    skipped: dict[str, str]
    """Trial id -> why it is not priced (still running)."""
    assumptions: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def hosted_usd(self) -> float:
        """Of `usd`, the tokens the hosted arms were billed: API dollars, which no device price moves."""
        return sum(c.usd for c in self.trials if c.hosted)

    @property
    def compute_usd(self) -> float:
        """Of `usd`, the device time (`seconds`) at the table's device prices."""
        return sum(c.usd for c in self.trials if not c.hosted)


def sweep_cost(trials: Iterable[TrialView], runs: Mapping[str, RunView], prices: PriceTable) -> SweepCost:
    """The compute a sweep spent: every complete, pruned and failed trial, and the tokens its hosted arms were
    billed for. `runs` is keyed by run_id."""
    costs, skipped = [], {}
    for trial in trials:
        if trial.status == "running" and not trial.finished_at:
            skipped[trial.id] = "still running (or its process died unnoticed): no finish time yet"
            continue
        if trial.device == "hosted" and trial.hosted is None:
            skipped[trial.id] = "a hosted arm that stopped before it recorded any usage: its spend is unknown"
            continue
        if trial.device == "hosted" and trial.hosted.price is None:  # a server of the team's own, usually
            usage = trial.hosted
            skipped[trial.id] = (f"a hosted arm on endpoint {usage.endpoint}, which has no `price` entry: its "
                                 f"{usage.prompt_tokens:,} prompt + {usage.completion_tokens:,} completion tokens are "
                                 "not priced (give the endpoint `price:` to count them)")
            continue
        costs.append(trial_cost(trial, runs.get(trial.run_id or ""), prices))
    by_status: dict[str, float] = {}
    for c in costs:
        by_status[c.status] = by_status.get(c.status, 0.0) + c.usd
    usd, seconds = sum(c.usd for c in costs), sum(c.seconds for c in costs)
    counts = ", ".join(f"{sum(c.status == s for c in costs)} {s}" for s in by_status)
    notes = {
        "sweep_seconds": assumption(seconds, "device seconds", f"measured: sum over {len(costs)} trials ({counts})"),
        "sweep_usd": assumption(usd, "USD", "derived: sum of each trial's seconds x its device's price, and of each "
                                             "hosted arm's tokens x its price"),
    }
    if hosted := [c for c in costs if c.hosted]:
        notes["sweep_hosted_usd"] = assumption(sum(c.usd for c in hosted), "USD", f"derived: of sweep_usd, the tokens "
                                               f"{len(hosted)} hosted arm(s) were billed, at their price entries "
                                               "(API dollars, not device time)")
    for c in costs:
        notes.update(c.evidence())
    return SweepCost(usd, seconds, tuple(costs), by_status, skipped, notes)


# -- serving the fine-tuned model, and a hosted model ---------------------------------------------------------


def measured_evaluation(trial: TrialView, split: str = SERVING_SPLIT) -> Throughput:
    """What generating `split` measured for the trial: examples, seconds, batch size, tokens."""
    found = trial.throughput.get(split)
    if found is None or not found.examples:
        raise HarnessError(
            f"trial {trial.id} has no measured throughput on {split}: it did not reach the test split (pruned or "
            "failed), or was recorded before throughput was stored. Choose a complete trial, or re-run it."
        )
    return found


def serving_usd_per_query(usd_per_hour: float, completion_tokens_per_s: float,
                          completion_tokens_per_query: float) -> float:
    """Device dollars per second x seconds per query (completion tokens / measured completion tokens per s)."""
    return usd_per_hour / 3600 * completion_tokens_per_query / completion_tokens_per_s


def api_usd_per_query(input_usd_per_1m: float, output_usd_per_1m: float, prompt_tokens: float,
                      completion_tokens: float, token_ratio: float) -> float:
    """Local-tokenizer counts x token_ratio = hosted tokens, each priced per 1M."""
    return token_ratio * (prompt_tokens * input_usd_per_1m + completion_tokens * output_usd_per_1m) / 1e6


@dataclass(frozen=True)
class ServingCost:
    trial_id: str
    price_key: str
    usd_per_hour: float
    concurrency: int
    """Requests in flight when the throughput was measured (prompts per batch for the HF fallback; 0: unknown)."""
    completion_tokens_per_s: float
    prompt_tokens_per_query: float
    completion_tokens_per_query: float
    tokens_per_query: float
    seconds_per_query: float
    usd_per_1m_completion_tokens: float
    usd_per_1m_tokens: float
    """Per 1M tokens of prompt and completion together."""
    usd_per_query: float
    assumptions: dict = field(default_factory=dict)
    engine: str = "hf"
    """What the throughput was measured on: `vllm` (a load test of the serving engine), `hf` (the harness's own
    generation, the fallback) or `user` (a figure measured elsewhere, --serving-throughput)."""
    throughput_source: str = ""
    """Where the completion tokens per second come from, in words, with the concurrency."""
    timed: Throughput | None = None
    """The fallback's timed generate pass behind `completion_tokens_per_s` (examples, seconds, batch, and each batch's
    tokens and seconds where recorded: `speed.speed_interval`). None for a load test or a user figure."""

    def to_dict(self) -> dict:
        return asdict(self)


def serving_cost(trial: TrialView, run: RunView | None, prices: PriceTable, split: str = SERVING_SPLIT,
                 throughput: float | None = None, flag: str = "--serving-throughput",
                 usd_per_hour: float | None = None, rate_flag: str = "--serving-usd-per-hour") -> ServingCost:
    """Serve the trial's model on the device it was evaluated on. The completion tokens per second come from
    `throughput` (a figure the user measured elsewhere, given with `flag`) when given; else from the load test of
    the serving engine recorded with the trial (vLLM); else, labelled as the fallback it is, from the harness's own
    generation of `split` (transformers' generate at the sweep's batch size, which production servers outrun). The
    hour of serving is priced at the trial's device from the price table, or at `usd_per_hour` (what the machine a
    figure was measured on costs, given with `rate_flag`) when given."""
    tid = trial.id
    ev = measured_evaluation(trial, split)
    tps, engine, source, concurrency = _throughput(trial, ev, split, throughput, flag)
    if tps <= 0 or not math.isfinite(tps):
        raise HarnessError(f"trial {tid}: {tps!r} completion tokens per second ({source}) cannot be priced; give a "
                           f"positive figure with {flag}, or re-run the trial.")
    if usd_per_hour is None:
        key, rate, notes = device_rate(trial, run, prices, in_process=engine == "hf")
        derived = "derived: device price x units held"
    else:
        if not (math.isfinite(usd_per_hour) and usd_per_hour > 0):
            raise HarnessError(f"{rate_flag} {usd_per_hour!r}: give what an hour of the serving machine costs, in USD, "
                               "above 0.")
        key, rate, notes, derived = "user", usd_per_hour, {}, f"{USER} ({rate_flag})"
    prompt, completion = ev.prompt_tokens_per_query, ev.completion_tokens_per_query
    per_query = serving_usd_per_query(rate, tps, completion)
    counted = f"{measured(tid)} ({split}: {ev.examples} examples)"
    notes = {
        **notes,
        "usd_per_hour": assumption(rate, "USD per hour", derived),
        "completion_tokens_per_s": assumption(tps, "completion tokens per second", source),
        "concurrency": assumption(concurrency, "requests in flight (prompts per batch for the fallback)", source),
        "prompt_tokens_per_query": assumption(prompt, "local tokens per query", counted),
        "completion_tokens_per_query": assumption(completion, "local tokens per query", counted),
    }
    return ServingCost(tid, key, rate, concurrency, tps, prompt, completion, prompt + completion,
                       completion / tps, rate / 3600 / tps * 1e6, per_query / (prompt + completion) * 1e6,
                       per_query, notes, engine, source, ev if engine == "hf" else None)


def _throughput(trial: TrialView, ev: Throughput, split: str, given: float | None,
                flag: str) -> tuple[float, str, str, int]:
    """(completion tokens per second, engine, source in words, concurrency) of the figure serving is priced at."""
    if given is not None:
        return given, "user", f"{USER} ({flag}, measured elsewhere)", 0
    load = trial.serving
    if load is not None and load.engine != "hf":
        latency = (f", latency p50 {load.p50_latency_s:.2f} s, p95 {load.p95_latency_s:.2f} s"
                   if load.p50_latency_s is not None else "")
        return (load.completion_tokens_per_s, load.engine, f"{measured(trial.id)}: {load.source}{latency}",
                load.concurrency)
    return (ev.completion_tokens_per_s, "hf", f"{measured(trial.id)}: fallback, the harness's own generate on {split} "
            f"({ev.examples} examples, batch {ev.batch_size}: {timing_text(ev)}), not a serving engine; a vLLM load "
            "test (generation.engine: vllm) or --serving-throughput prices what production runs", ev.batch_size)


@dataclass(frozen=True)
class ApiCost:
    name: str
    prompt_trial_id: str
    input_usd_per_1m: float
    output_usd_per_1m: float
    token_ratio: float
    prompt_tokens_per_query: float
    """Tokens as counted (the local tokenizer's, or a hosted arm's own); the hosted count is this x token_ratio."""
    completion_tokens_per_query: float
    usd_per_query: float
    assumptions: dict = field(default_factory=dict)
    measured: bool = False
    """True for a hosted arm's own tokens as its endpoint reported them: no ratio converts them."""

    def to_dict(self) -> dict:
        return asdict(self)


def hosted_cost(trial: TrialView, prices: PriceTable, split: str = SERVING_SPLIT,
                unreported: int | None = None) -> ApiCost:
    """A hosted arm's own cost per query: the tokens its endpoint reported on `split`, at its price entry. Every
    input is measured or entered: no local tokenizer stands in, and there is no token ratio to assume.

    `unreported`: the split's answers without reported usage, as `answers_without_usage` counts them on its stored
    examples; None reads the split's throughput, which recorded no token at all when the endpoint reported none.
    Any such answer refuses: its tokens were never counted, so the per-query figure would understate the cost."""
    usage = trial.hosted
    if usage is None:
        raise HarnessError(f"trial {trial.id} is not a hosted arm with recorded usage.")
    price = _endpoint_price(trial.id, usage, prices)
    ev = measured_evaluation(trial, split)
    if missing := unreported_answers(trial, split, unreported):
        raise HarnessError(f"trial {trial.id}: endpoint {usage.endpoint} reported no token usage for {missing} of its "
                           f"{ev.examples} {split} answers, so its cost per query is not measured (those answers "
                           "would count as 0 tokens).")
    prompt, completion = ev.prompt_tokens_per_query, ev.completion_tokens_per_query
    src = f"{measured(trial.id)} ({split}: {ev.examples} answers, tokens as endpoint {usage.endpoint} reported them)"
    notes = {
        "api_input_usd_per_1m": assumption(price.input_usd_per_1m, "USD per 1M input tokens", price.source),
        "api_output_usd_per_1m": assumption(price.output_usd_per_1m, "USD per 1M output tokens", price.source),
        "token_ratio": assumption(1.0, "hosted tokens per counted token", "measured: the endpoint's own tokens"),
        "prompt_tokens_per_query": assumption(prompt, "hosted tokens per query", src),
        "completion_tokens_per_query": assumption(completion, "hosted tokens per query", src),
    }
    usd = api_usd_per_query(price.input_usd_per_1m, price.output_usd_per_1m, prompt, completion, 1.0)
    return ApiCost(price.name, trial.id, price.input_usd_per_1m, price.output_usd_per_1m, 1.0, prompt, completion,
                   usd, notes, measured=True)


def api_cost(name: str, prompt_trial: TrialView, prices: PriceTable, token_ratio: float | None = None,
             split: str = SERVING_SPLIT) -> ApiCost:
    """A hosted model answering the prompting trial's prompts (few-shot prompts are long: that is the point).

    The completion length is the local model's, a proxy for the hosted model's. `token_ratio` given here is
    user input; otherwise the API entry's, else the table's.
    """
    price = prices.api(name)
    tid = prompt_trial.id
    ev = measured_evaluation(prompt_trial, split)
    prompt, completion = ev.prompt_tokens_per_query, ev.completion_tokens_per_query
    if token_ratio is not None:
        if not (math.isfinite(token_ratio) and token_ratio > 0):  # a ratio of 0 or below prices the API at or below $0
            raise HarnessError(f"token_ratio {token_ratio!r} (--token-ratio): hosted tokens per local token must be "
                               "above 0, e.g. 1.2 when the hosted tokenizer counts 20% more tokens.")
        ratio, ratio_src = float(token_ratio), USER
    elif price.token_ratio is not None:
        ratio, ratio_src = price.token_ratio, price.source
    else:
        ratio, ratio_src = prices.token_ratio, prices.token_ratio_source
    src = f"{measured(tid)} ({split}, {ev.examples} examples, local tokenizer)"
    notes = {
        "api_input_usd_per_1m": assumption(price.input_usd_per_1m, "USD per 1M input tokens", price.source),
        "api_output_usd_per_1m": assumption(price.output_usd_per_1m, "USD per 1M output tokens", price.source),
        "token_ratio": assumption(ratio, "hosted tokens per local token", ratio_src),
        "prompt_tokens_per_query": assumption(prompt, "local tokens per query", src),
        "completion_tokens_per_query": assumption(completion, "local tokens per query",
                                                  f"{src}; the local model's answers stand in for the hosted one's"),
    }
    usd = api_usd_per_query(price.input_usd_per_1m, price.output_usd_per_1m, prompt, completion, ratio)
    return ApiCost(name, tid, price.input_usd_per_1m, price.output_usd_per_1m, ratio, prompt, completion, usd, notes)
