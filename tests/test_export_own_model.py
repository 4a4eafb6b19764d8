"""The export's serving notes for a user's own model folder (a new user's findings): a path with spaces is quoted in
the commands, vLLM is told a window the model has, and a model without a chat template is asked as it was prompted,
through the completions endpoint with the trial's plain-text layout, not through chat turns."""

from __future__ import annotations

import shlex
from pathlib import Path

from tiny import build_tiny_tokenizer
from views import trial_view

from harness.data.prompting import Prompter
from harness.data.suites import load_suite
from harness.lifecycle.serving_notes import readme, serving_json

SUITE = load_suite(str(Path(__file__).resolve().parents[1] / "suites" / "ticket-triage"))
BASE = "/models/my base ü"


def test_a_model_without_a_chat_template_is_asked_through_completions_with_its_layout():
    plain = Prompter(build_tiny_tokenizer(chat_template=False), SUITE.instruction, SUITE.contract)
    trial = trial_view(1, method="lora", params={"r": 8})
    notes = serving_json(trial, SUITE, plain, 16, constrained=True)
    assert notes["chat_template"] is False and notes["prompt_template"].endswith("Input: {input}\nOutput:")
    assert "to the completions endpoint (not chat)" in notes["note"]
    text = readme(trial, SUITE, BASE, adapter=True, merged=False, model_name=BASE, constrained=True, context=1024,
                  chat=False)
    assert f"--model {shlex.quote(BASE)} --dtype float32 --max-model-len 1024" in text
    assert "client.completions.create(" in text and "client.chat.completions.create(" not in text
    assert "through /v1/completions with `serving.json`'s `prompt_template`" in text


def test_a_chat_model_keeps_its_turns_and_a_long_window_is_capped_for_a_cpu():
    chat = Prompter(build_tiny_tokenizer(chat_template=True), SUITE.instruction, SUITE.contract)
    trial = trial_view(1, method="lora", params={"r": 8})
    assert "prompt_template" not in serving_json(trial, SUITE, chat, 16, constrained=True)
    text = readme(trial, SUITE, "/models/base", adapter=True, merged=False, model_name="/models/base",
                  constrained=True, context=8192, chat=True)
    assert "--max-model-len 2048" in text and "client.chat.completions.create(" in text
