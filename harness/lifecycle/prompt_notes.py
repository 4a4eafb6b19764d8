"""The README of a prompting trial's export (`prompt_export`): how to send the prompt the trial was scored with, to
the base model served with vLLM or to the hosted endpoint it asked."""

from __future__ import annotations

import json
import shlex

from harness.core.records import TrialView
from harness.data.contract import OutputContract
from harness.data.suites import Suite
from harness.lifecycle.serving_notes import (
    PLACEHOLDER,
    STRUCTURED_OUTPUTS_CONFIG,
    base_model_lines,
    constrained_intro,
)

LOAD = ["from harness.data.suites import Example", "from harness.lifecycle.prompt_export import load_prompt"]
"""Python that imports what rebuilds the trial's prompt through the harness (`load_prompt`)."""


def _input_code(serving: dict) -> tuple[list[str], str]:
    """Python that sets `messages` (a chat model's conversation) or `prompt` (a plain-text model's prompt) for one
    input, as the trial framed it, as (its imports, the statement): from `serving.json` where every input gets the
    same shots, else through the harness, which picks each input's shots as the trial did."""
    if serving["shots"]["selection"] == "similar":
        built = "messages = load_prompt('.').messages" if serving["chat_template"] else \
            "prompt = load_prompt('.').prompt"
        return LOAD, f'{built}(Example("1", "the input", ""))  # "." is this folder'
    if serving["chat_template"]:
        return [], 'messages = serving["messages"][:-1] + [{"role": "user", "content": "the input"}]'
    return [], (f'before, after = serving["prompt_template"].rsplit("{PLACEHOLDER}", 1)  # the input\'s place\n'
                'prompt = before + "the input" + after')


def _request_code(serving: dict, client: str, ask: str) -> list[str]:
    """A Python block that sends one input as the trial did: `client` creates the openai client, `ask` the call."""
    imports, statement = _input_code(serving)
    return ["```python", "import json", *(["import os"] if "os." in client else []), *imports,
            "from openai import OpenAI", "", 'serving = json.load(open("serving.json"))', statement, client, ask, "```"]


def prompt_readme(trial: TrialView, suite: Suite, serving: dict, served: str, model_name: str,
                  context: int | None) -> str:
    """`served`: the base model's path (or hub id), or the hosted endpoint's model; `context`: a local model's
    window, which vLLM is told."""
    hosted = "endpoint" in serving
    lines = [f"# {trial.id}: {trial.method} on {suite.name} {suite.version}", "",
             "The prompt this trial was scored with. Prompting has no weights of its own: "
             + (f"the hosted model `{served}` answers it." if hosted else "the base model answers it."), "",
             *_conversation(serving), ""]
    lines += _hosted(serving) if hosted else _local(serving, served, model_name, context)
    return "\n".join(lines) + "\n"


def _conversation(serving: dict) -> list[str]:
    shots = serving["shots"]
    if shots["selection"] == "similar":
        return [f"Each input gets shots of its own: the {shots['k']} examples of `shots_pool.jsonl` "
                f"({shots['pool_size']:,} train examples) most like it, ranked by {shots['ranking']}. The harness "
                "builds the conversation for an input as the trial did:", "",
                "```python", *LOAD, _input_code(serving)[1], "```", "",
                "For a local model, `load_prompt(\".\", tokenizer)` with the base model's tokenizer",
                "(`AutoTokenizer.from_pretrained` of the folder in `base_model.json`) also leaves out the first shots",
                "of a prompt that would not fit the model's window, as the trial did."]
    n = len(shots["examples"])
    shown = f"{n} shot{'s' if n != 1 else ''} (train examples) as user and assistant turns" if n else "no shots"
    if "prompt_template" in serving:
        return [f"The model has no chat template: it was prompted with plain text. `serving.json`'s `prompt_template` "
                f"holds the system prompt, {shown.replace(' as user and assistant turns', '')} and the input's place, "
                f"the last `{PLACEHOLDER}`. Put the input there and send the text to the completions endpoint (not "
                "chat); the answer is the completion."]
    return [f"`serving.json`'s `messages` is the whole conversation: the system prompt, {shown}, then `{PLACEHOLDER}` "
            "as the last user turn. Replace that with the input and send the messages; the answer is the assistant's "
            "reply. `load_prompt` builds the same conversation through the harness:", "", "```python", *LOAD,
            'messages = load_prompt(".").messages(Example("1", "the input", ""))  # "." is this folder', "```"]


def _local(serving: dict, base: str, model_name: str, context: int | None) -> list[str]:
    constrained, chat = serving["constrained"], serving["chat_template"]
    flag = f" \\\n  --structured-outputs-config '{json.dumps(STRUCTURED_OUTPUTS_CONFIG)}'" if constrained else ""
    lines = ["The base model it was scored on is named in", *base_model_lines(base, model_name, "base_model.json"), "",
             "Serve it with vLLM, from vLLM's own environment (on a CPU, `bash scripts/vllm_env.sh` in the harness's",
             "repository builds one); float32 gives the greedy answers the scores were measured with:", "",
             "```bash", "export VLLM_CPU_KVCACHE_SPACE=1   # on a CPU: the KV cache, in GiB",
             f"python -m vllm.entrypoints.openai.api_server --model {shlex.quote(base)} --dtype float32 "
             f"--max-model-len {min(context or 2048, 2048)}{flag}", "```", ""]
    if constrained:
        lines += constrained_intro(OutputContract.from_dict(serving["output_contract"], "serving.json"))
    else:
        lines += [f"Answer greedily (temperature 0, at most {serving['max_new_tokens']} new tokens: `serving.json`'s "
                  "`vllm_request`): the scores in the results store were measured that way."]
    ask = "messages=messages)" if chat else "prompt=prompt)"
    return lines + ["With the openai client:", "", *_request_code(
        serving, 'client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")',
        f"answer = client.{'chat.completions' if chat else 'completions'}.create("
        f'model=client.models.list().data[0].id, extra_body=serving["vllm_request"], {ask}')]


def _hosted(serving: dict) -> list[str]:
    endpoint = serving["endpoint"]
    structured = ("with the suite's JSON Schema as `response_format` (structured output), as the trial asked"
                  if serving["structured"] else "without structured output, as the trial asked")
    return [f"Ask `{endpoint['model']}` at {endpoint['base_url']} (its key in ${endpoint['api_key_env']}, never in "
            f"these files) with `serving.json`'s `request`: temperature 0, at most {serving['request']['max_tokens']} "
            f"tokens, {structured}. With the openai client:", "",
            *_request_code(serving, f'client = OpenAI(base_url={json.dumps(endpoint["base_url"])}, '
                                    f'api_key=os.environ[{json.dumps(endpoint["api_key_env"])}])',
                           'request = {k: v for k, v in serving["request"].items() if k != "messages"}\n'
                           f"answer = client.chat.completions.create(model={json.dumps(endpoint['model'])}, "
                           "messages=messages, **request)"), "",
            "A hosted model can change behind the same name: its scores are those of the model as it answered when "
            "the trial ran."]
