"""Typed views for tests that need a trial or a run without a database: every field defaulted, any one set."""

from __future__ import annotations

from typing import Any

from harness.core.records import RunView, TrialView
from harness.evaluation.rules import STATS_RULES

_TRIAL = dict(
    study="s", run_id="r1", method="lora", params={}, status="complete", failure_reason=None, trained=True,
    started_at=None, finished_at=None, device="cuda", peak_memory_mb=None, train_seconds=None, eval_seconds=None,
    objective=None, feasible=True, maximize=True, artifact_path=None, training=None, shots=(),
    include_contract=None, constraints={}, label_reports={}, throughput={}, hosted=None, phase_seconds={},
    metrics={}, provenance={}, stats_rules=STATS_RULES,  # scored by this release, unless a test says otherwise
)


def trial_view(number: int = 0, **fields: Any) -> TrialView:
    study = fields.get("study", _TRIAL["study"])
    return TrialView(**{**_TRIAL, "id": f"{study}/{number}", "number": number, **fields})


def run_view(device: str = "cuda", device_name: str = "NVIDIA H100 80GB HBM3", cpu_count: int | None = 16,
             run_id: str = "r1") -> RunView:
    return RunView(run_id, "s", None, 1, "host", device, device_name, cpu_count, {})
