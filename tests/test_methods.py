"""The Method contract, run over every registered method on a tiny model: prepare (train a step), save, load, and
the loaded model gives the same greedy predictions on the same prompts. Plus the Params contract: typed defaults
that pass their own bounds, and bounds that refuse what is out of range."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from harness.core.config import BudgetConfig, EndpointConfig, ExperimentConfig, TrainingConfig
from harness.core.errors import ConfigError
from harness.core.typed import build, check_field
from harness.data.suites import load_suite
from harness.hosted.client import HostedEndpoint
from harness.models import sources
from harness.training.methods import METHODS
from harness.training.methods.base import TrialContext


def _ctx(model_dir, suite_dir, endpoints=None, device="cpu") -> TrialContext:
    suite = load_suite(str(suite_dir))
    config = ExperimentConfig(name="contract", space={}, budget=BudgetConfig(max_steps=2, trial_train_seconds=None),
                              training=TrainingConfig(batch_size=4, eval_every_steps=0))
    return TrialContext(config=config, suite=suite, train_examples=suite.splits["train"][:16],
                        source=sources.resolve(str(model_dir)), device=device, dtype=torch.float32, seed=0,
                        endpoints=endpoints or {}, max_new_tokens=8)


def _answers(candidate, examples) -> list[str]:
    return [g.output for g in candidate.answer(examples, max_new_tokens=8, batch_size=4, desc="contract")]


@pytest.fixture
def endpoints(request, tmp_path):
    """The hosted methods (`api`, `api_dspy`) ask a real local server; the other methods need none."""
    if not METHODS.get(request.node.callspec.params["name"]).hosted:
        return {}
    server = request.getfixturevalue("openai_server")
    config = EndpointConfig(base_url=server.url, model=server.model, api_key_env="UNUSED", cache=False)
    return {"tiny": HostedEndpoint("tiny", config, "test-key")}


@pytest.mark.parametrize("name", METHODS.names())
def test_prepare_save_load_gives_the_same_predictions(name, tiny_model_dir, toy_suite, tmp_path, endpoints):
    method = METHODS.get(name)
    device = "cuda" if name == "qlora" and torch.cuda.is_available() else "cpu"  # QLoRA runs where CUDA is
    reason = method.unavailable_reason(device)
    if reason:
        pytest.skip(f"{name} cannot run on this machine: {reason}")
    ctx = _ctx(tiny_model_dir, toy_suite, endpoints, device)
    overrides = {"shots": 2} if "shots" in {f.name for f in dataclasses.fields(method.Params)} else {}
    if method.searches:  # a search the 16 train examples hold: 4 held out, shots from the other 12
        overrides = {"val_size": 4, "pool_size": 12, "candidates": 1, "max_demos": 2, "max_bootstrapped": 1}
    params = build(method.Params, {**overrides, **({"endpoint": "tiny"} if endpoints else {})}, "contract")
    candidate = method.prepare(ctx, params)
    assert candidate.trained == method.trains and (candidate.hosted is not None) == method.hosted
    if method.trains:
        assert candidate.train_report.steps == 2 and candidate.train_report.loss_curve is not None
    examples = ctx.suite.splits["dev"][:4]
    before = _answers(candidate, examples)

    saved = method.save(candidate, tmp_path / "artifact")
    if not method.trains:
        assert saved is None and not (tmp_path / "artifact").exists()  # nothing to keep: the base model answers
    else:
        assert saved == tmp_path / "artifact" and list(saved.glob("*.safetensors"))
        assert not list(saved.glob("*.bin")) and not list(saved.glob("*.pt"))  # never pickles
    loaded = method.load(ctx, params, saved)
    assert _answers(loaded, examples) == before
    # QLoRA loads its adapter on the same 4-bit base it was scored on, and says so
    assert getattr(loaded, "quantized", False) == getattr(candidate, "quantized", False) == (name == "qlora")
    assert loaded.prompter.messages(examples[0]) == candidate.prompter.messages(examples[0])
    # its framing, without a model: what the calibration counts dev and test prompts with
    framed_ctx = ctx if not method.searches else dataclasses.replace(
        ctx, recorded_shots=tuple(ex.id for ex in candidate.prompter.shots.examples),
        recorded_instruction=candidate.search.instruction)
    framed = method.framing(framed_ctx, params, getattr(candidate, "tokenizer", None))
    assert [framed.messages(ex) for ex in examples] == [candidate.prompter.messages(ex) for ex in examples]
    if method.searches:
        assert method.framing(ctx, params, None) is None  # before its search, nothing to count with
    if method.hosted:
        assert loaded.hosted.requests == len(examples) and loaded.hosted.prompt_tokens > 0
        return
    # Greedy answers of a barely trained tiny model could match the base model's by chance; the logits cannot.
    ids = loaded.tokenizer(loaded.prompter.prompt(examples[0]), return_tensors="pt").input_ids.to(device)
    assert torch.allclose(_logits(loaded.model, ids), _logits(candidate.model, ids), atol=1e-5)
    if method.trains:
        base = METHODS.get("prompt").load(ctx, build(METHODS.get("prompt").Params, {}, "base"), None)
        assert not torch.allclose(_logits(base.model, ids), _logits(candidate.model, ids), atol=1e-5), \
            "the saved weights did not change anything"


@torch.no_grad()
def _logits(model, ids) -> torch.Tensor:
    model.eval()
    return model(input_ids=ids).logits


@pytest.mark.parametrize("name", METHODS.names())
def test_params_are_typed_with_valid_defaults_and_enforced_bounds(name):
    params_cls = METHODS.get(name).Params
    assert dataclasses.is_dataclass(params_cls) and params_cls.__dataclass_params__.frozen
    defaults = build(params_cls, {}, "defaults")  # every field has a default, and it passes its own bounds
    for field in dataclasses.fields(params_cls):
        value = getattr(defaults, field.name)
        assert check_field(params_cls, field.name, value, "x", field.name) == value
        bounds = field.metadata
        for key in ("min", "gt"):
            if key in bounds:
                too_low = bounds[key] - 1 if key == "min" else bounds[key]
                with pytest.raises(ConfigError, match=field.name):
                    check_field(params_cls, field.name, type(value)(too_low), "x", field.name)


def test_the_registry_refuses_a_second_method_of_the_same_name():
    with pytest.raises(ValueError, match="already registered"):
        METHODS.register(METHODS.get("lora"))


def test_a_bf16_lora_trial_answers_its_dev_probe_in_its_weights_dtype(tiny_model_dir, toy_suite):
    """With `training.precision: bf16` (chosen by calibration where it timed faster), every LoRA trial failed at its
    first dev probe: the prompts' shared prefix, encoded once through the model's autocast-wrapped forward, cached
    bf16 values beside fp32 keys ("Expected query, key, and value to have the same dtype"). The probe answers as the
    final scoring will, in the weights' dtype."""
    from harness.training.methods.base import LocalCandidate

    seen = []

    def make_probe(model, tokenizer, prompter, grammar):
        def probe(step: int) -> bool:
            candidate = LocalCandidate(model, tokenizer, prompter, True, grammar=grammar)
            seen.append((step, _answers(candidate, suite.splits["dev"][:4])))
            return False
        return probe

    # an instruction long enough that every prompt shares a prefix, which generation encodes once
    suite = dataclasses.replace(load_suite(str(toy_suite)), instruction="Name the colour of the thing. " * 8)
    config = ExperimentConfig(name="bf16", space={}, budget=BudgetConfig(max_steps=2, trial_train_seconds=None),
                              training=TrainingConfig(batch_size=4, eval_every_steps=1, precision="bf16"))
    ctx = TrialContext(config=config, suite=suite, train_examples=suite.splits["train"][:16],
                       source=sources.resolve(str(tiny_model_dir)), device="cpu", dtype=torch.float32, seed=0,
                       make_dev_probe=make_probe, max_new_tokens=8)
    method = METHODS.get("lora")
    candidate = method.prepare(ctx, build(method.Params, {"constrained": True}, "bf16"))
    assert [step for step, _ in seen] == [1, 2] and all(len(answers) == 4 for _, answers in seen)
    assert candidate.train_report.steps == 2
