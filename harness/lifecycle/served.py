"""Scores as served: re-score an adapter through the engine it will be served on (a vLLM server), on the same test
examples it was scored on, and say how far the served answers agree with the stored ones.

The scores a lead promotes were measured with the harness's own generation; production answers with vLLM. Greedy
fp32 answers match token for token on the models tested here, but bf16 servers do not (7 of 20 on SmolLM2), and a
quantised or differently batched server can drift. So this reports, per test example, whether the served answer is
the same text and the same parsed answer as the stored one, and the paired difference of the objective metric by
the decision rule (`harness.analysis.decision`).
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.analysis.decision import Decision, compare_paired, scores_of
from harness.analysis.formatting import pct
from harness.core.config import ExperimentConfig
from harness.core.errors import HarnessError
from harness.core.records import EngineInfo, TrialView, ran_with
from harness.core.redaction import Redactor
from harness.core.text import with_article
from harness.core.typed import build
from harness.data.contract import parse_output
from harness.data.suites import seeded_subset
from harness.evaluation.scoring import score_split
from harness.models import sources
from harness.serving.vllm import ENV_SCRIPT, VllmServer, VllmSettings, vllm_version
from harness.store.database import Store
from harness.sweep.engine import check_served_model
from harness.sweep.predict import load_candidate
from harness.training.engines import VllmEngine


@dataclass(frozen=True)
class ServedRescore:
    trial: str
    engine: EngineInfo
    examples: int
    identical_text: int
    """Served answers equal, character for character, to the stored ones."""
    identical_answer: int
    """Served answers that parse to the same answer as the stored ones (what the scorers read)."""
    decision: Decision
    """Served minus stored, on the objective metric, paired over the same test examples."""

    def text(self) -> str:
        n = self.examples
        return (f"{self.trial} re-scored through {self.engine.name} {self.engine.version} ({self.engine.dtype}) on "
                f"its {n} test examples: {self.identical_text} of {n} answers identical to the stored ones "
                f"({pct(self.identical_text / n)}%), {self.identical_answer} of {n} the same parsed answer "
                f"({pct(self.identical_answer / n)}%); {self.decision.metric} served minus stored "
                f"{self.decision.evidence()}: {self.decision.reading()}.")

    def to_dict(self) -> dict:
        return asdict(self)


def served_settings(store: Store, trial_id: str, python: str | None = None, url: str | None = None) -> VllmSettings:
    """The vLLM server to re-score through: the one named here, else the study's `serving:`."""
    trial = store.require_trial(trial_id)
    _check_servable(trial)  # before an export is written for it
    study = store.study(trial.study)
    serving = build(ExperimentConfig, ran_with(trial, study), f"trial {trial.id}").serving
    python, url = python or (None if url else serving.vllm_python), url or (None if python else serving.vllm_url)
    if not python and not url:
        raise HarnessError(f"--rescore needs vLLM: pass --vllm-python (the python `bash {ENV_SCRIPT}` prints) or "
                           "--vllm-url, or set serving.vllm_python in the experiment.")
    settings = VllmSettings(python=python, url=url, dtype=serving.dtype, max_model_len=serving.max_model_len,
                            max_loras=serving.max_loras, max_lora_rank=serving.max_lora_rank,
                            startup_timeout_s=serving.startup_timeout_s)
    check_vllm(settings, sources.resolve(study.model_name) if settings.url else None)  # a server running: which model
    return settings


def check_vllm(settings: VllmSettings, source: sources.ModelSource | None = None) -> None:
    """Refuse, in seconds and before an export is written, what would fail the re-score: a server at the url that
    does not answer (or does not serve the base model as `base`, or serves another model than `source` as it), or a
    python without vLLM."""
    if settings.url:
        server = VllmServer.attach(settings.url, "base")
        server.check_adapter_loading()  # what is re-scored is an adapter
        if source is not None:
            check_served_model(server, "base", source, lambda line: print(line, file=sys.stderr))
    else:
        vllm_version(settings)


def _check_servable(trial: TrialView) -> None:
    if trial.trained and trial.method != "lora":
        raise HarnessError(f"{trial.id} is {with_article(trial.method)} trial"
                           "; vLLM serves LoRA adapters on the study's base "
                           "model here (a fully fine-tuned model, or QLoRA's 4-bit base, needs a server of its own).")


def rescore_served(store: Store, trial_id: str, settings: VllmSettings, log: Path) -> ServedRescore:
    trial = store.require_trial(trial_id, complete=True)
    _check_servable(trial)
    study = store.study(trial.study)
    config = build(ExperimentConfig, ran_with(trial, study), f"trial {trial.id}")
    candidate, suite, cap = load_candidate(store, trial.id, device="cpu")
    examples = seeded_subset(suite.splits["test"], config.data.test_limit, config.seed)
    stored = {e.example_id: e for e in store.examples(trial.id, "test")}
    if {ex.id for ex in examples} != set(stored):
        raise HarnessError(f"{trial.id}'s stored test examples are not the suite's test subset any more (the suite "
                           "changed); re-scoring through vLLM would not be paired.")
    source = sources.resolve(study.model_name)
    with VllmServer.connect(settings, source.path, "base", log) as server:
        engine = VllmEngine(lambda: server, 4, 0, 1)
        served = engine.serve(candidate, trial.artifact_path, trial.id)
        try:
            answers = served.answer(examples, cap, config.generation.batch_size)
        finally:
            engine.release(served)
        info = engine.info(candidate)
    outputs = [a.output for a in answers]
    scored = score_split(examples, outputs, suite, config.seed)
    redactor = Redactor.from_config(config.redaction)  # stored outputs may be redacted: compare like with like
    shown = [redactor.redact(out) for out in outputs]
    same_text = sum(out == stored[ex.id].output for ex, out in zip(examples, shown))
    def answer(text: str):
        return parse_output(text, suite.contract).value

    same_answer = sum(answer(out) == answer(stored[ex.id].output) for ex, out in zip(examples, shown))
    metric = study.objective_metric
    now = {ex.id: values.get(metric) for ex, values in zip(examples, scored.per_example)}
    decision = compare_paired(now, scores_of(stored.values(), metric), metric, higher_is_better=study.maximize)
    return ServedRescore(trial.id, info, len(examples), same_text, same_answer, decision)

