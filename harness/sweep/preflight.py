"""Before any model loads: each hosted arm asks its endpoint once, with the arm's exact request parameters.

Listing the endpoint's models (the plan's reachability check) says nothing about whether it accepts this arm's
request. An endpoint that rejects `response_format`, `temperature` or `max_tokens` would refuse every example, and
those refusals must never read as wrong answers. So the sweep sends one real request per endpoint and `structured`
setting the space can produce, built exactly as the arm builds it, and refuses the arm with the endpoint's own
message when it is rejected.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import product

from harness.core.errors import ConfigError
from harness.hosted.client import ProbeProblem
from harness.sweep.plan import SweepPlan, hosted_endpoints, space_values
from harness.sweep.prepare import SweepData
from harness.sweep.space import method_params
from harness.sweep.trial import trial_context
from harness.training.methods import METHODS


def check_hosted_arms(plan: SweepPlan, data: SweepData, echo: Callable[[str], None]) -> None:
    """Raise ConfigError, naming the endpoint, the parameters and its message, if any arm's request is rejected."""
    picks = hosted_endpoints(plan.space)
    if not picks or not data.dev:
        return
    asks = dict.fromkeys((name, wants_schema) for method, names in picks.items() for name, wants_schema in
                         product(names, space_values(plan.space.params[method].get("structured", False))))
    ctx = trial_context(data)
    for name, wants_schema in asks:  # every hosted arm sends the `api` arm's request, shots aside
        params = method_params({"method": "api", "endpoint": name, "structured": wants_schema}, "preflight")
        arm = METHODS.get("api").load(ctx, params, None)
        request = arm.request(data.dev[0])
        problem = arm.client.probe(request)
        asked = (f"structured={wants_schema}, max_tokens={request.max_tokens}, temperature=0"
                 + (", response_format=json_schema" if request.response_format else ""))
        if problem is not None:
            raise ConfigError(_refusal(plan, name, problem, asked))
        echo(f"endpoint {name}: accepted a request with the arm's parameters ({asked})")


def _refusal(plan: SweepPlan, name: str, problem: ProbeProblem, asked: str) -> str:
    """The probe's problem, with the fix for what it points at."""
    endpoint = plan.config.endpoints[name]
    leave = "or leave the hosted arms that name it out of `space`."
    where = f"{plan.config_path}: endpoint `{name}` ({endpoint.base_url})"
    if problem.kind == "not_a_completion":
        return f"{plan.config_path}: {problem}; {leave}"
    if problem.kind == "wrong_url":
        return f"{where}: {problem}. Fix `endpoints.{name}.base_url`, {leave}"
    if problem.kind == "unknown_model":
        return f"{where}: {problem}. Fix `endpoints.{name}.model` (a model it lists at /models), {leave}"
    if problem.kind == "key":
        return (f"{where}: {problem}. Check the key in ${endpoint.api_key_env} and what it may use, {leave}")
    if problem.kind == "server_error":
        return (f"{where} failed on one chat request with the arm's parameters ({asked}): {problem}. The server "
                f"itself failed; read its log, start it again if it is down, then run again; {leave}")
    if problem.kind == "unanswered":
        return (f"{where} gave no answer to one chat request with the arm's parameters ({asked}): {problem}. If it is "
                f"up but slow, raise `endpoints.{name}.timeout_s`; else start it, or fix `endpoints.{name}.base_url`; "
                f"{leave}")
    return (f"{where} rejected a chat request with the arm's exact parameters ({asked}): {problem}. Its answers would "
            f"all be refusals, not wrong answers. Check that `endpoints.{name}.model` ({endpoint.model}) is a model "
            f"it serves; change the arm (e.g. `space.api.structured: false`, or `endpoints.{name}.max_tokens`); "
            f"{leave}")
