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
    STRUCTURED_FLAG,
    base_model_lines,
    constrained_intro,
    served_window,
)

LOAD = ["from harness.data.suites import Example", "from harness.lifecycle.prompt_export import load_prompt"]
"""Python that imports what rebuilds the trial's prompt through the harness (`load_prompt`)."""


def same_for_every_input(selection: str, instruction_per_input: bool) -> bool:
    """Whether every input is sent the same conversation but for the input itself: fixed shots, and the suite's
    instruction (a suite whose examples carry their own instruction puts it in place of the suite's)."""
    return selection == "fixed" and not instruction_per_input


def _input_code(serving: dict) -> tuple[list[str], str]:
    """Python that sets `messages` (a chat model's conversation) or `prompt` (a plain-text model's prompt) for one
    input, as the trial framed it, as (its imports, the statement): from `serving.json` where every input gets the
    same conversation but for the input, else through the harness, which picks each input's shots (and puts its own
    instruction) as the trial did."""
    chat = serving["chat_template"]
    if not same_for_every_input(serving["shots"]["selection"], serving["instruction_per_input"]):
        return LOAD, _loaded(serving)
    if chat:
        return [], 'messages = serving["messages"][:-1] + [{"role": "user", "content": "the input"}]'
    return [], (f'before, after = serving["prompt_template"].rsplit("{PLACEHOLDER}", 1)  # the input\'s place\n'
                'prompt = before + "the input" + after')


def _loaded(serving: dict) -> str:
    """Python that sets `messages` or `prompt` for one input through the harness (`load_prompt`)."""
    built = "messages = load_prompt('.').messages" if serving["chat_template"] else "prompt = load_prompt('.').prompt"
    own = ', "its own instruction"' if serving["instruction_per_input"] else ""
    return f'{built}(Example("1", "the input", ""{own}))  # "." is this folder'


def _request_code(serving: dict, client: str, ask: str) -> list[str]:
    """A Python block that sends one input as the trial did: `client` creates the openai client, `ask` the call."""
    imports, statement = _input_code(serving)
    read = "answer.choices[0].message.content" if serving["chat_template"] else "answer.choices[0].text"
    return ["```python", "import json", *(["import os"] if "os." in client else []), *imports,
            "from openai import OpenAI", "", 'serving = json.load(open("serving.json", encoding="utf-8"))', statement,
            client, ask, f"print({read})  # the answer", "```"]


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


TOKENIZER = ("With the base model's tokenizer, `load_prompt(\".\", tokenizer)` (`AutoTokenizer.from_pretrained` of the "
             "folder in `base_model.json`) also leaves out the first shots of a prompt that would not fit the model's "
             "window, as the trial did.")


def _conversation(serving: dict) -> list[str]:
    shots, own = serving["shots"], serving["instruction_per_input"]
    rebuilt = ["```python", *LOAD, _loaded(serving), "```"]
    local = "endpoint" not in serving
    if shots["selection"] == "similar":
        said = (f"Each input gets shots of its own: the {shots['k']} examples of `shots_pool.jsonl` "
                f"({shots['pool_size']:,} train examples) most like it, ranked by {shots['ranking']}.")
    else:
        n = len(shots["examples"])
        said = (f"Every input gets the same {n} shot{'s' if n != 1 else ''} (train examples, in `serving.json`)."
                if n else "No shots: the system prompt, then the input.")
    if own:
        said += (" The suite's examples carry their own instructions, and each was prompted with its own in place of "
                 "the suite's (`instruction`, which the others got): give each input its instruction too.")
    if own or shots["selection"] == "similar":
        return [said + " The harness builds the conversation for an input as the trial did:", "", *rebuilt,
                *(["", TOKENIZER] if local else [])]
    if "prompt_template" in serving:
        lines = [said + " The model has no chat template: it was prompted with plain text. `serving.json`'s "
                 f"`prompt_template` holds the system prompt, the shots and, as the last `{PLACEHOLDER}`, the input's "
                 "place: put the input there (only there: the shots may hold the same text) and send the text to the "
                 "completions endpoint (not chat); the answer is the completion."]
    else:
        lines = [said + f" `serving.json`'s `messages` is the whole conversation, with `{PLACEHOLDER}` as the last "
                 "user turn: send it with the input as that turn; the answer is the assistant's reply. `load_prompt` "
                 "builds the same conversation through the harness:", "", *rebuilt]
    if (fits := serving.get("input_tokens_with_all_shots")) is not None:
        lines += ["", f"The trial showed every shot to inputs of up to about {max(fits, 0):,} tokens; past that, it "
                      "left out the first shots so that the prompt fit the model's window, and a service must do the "
                      "same to send what was scored. " + TOKENIZER]
    return lines


def _local(serving: dict, base: str, model_name: str, context: int | None) -> list[str]:
    constrained, chat = serving["constrained"], serving["chat_template"]
    flag = f" \\\n  {STRUCTURED_FLAG}" if constrained else ""
    lines = ["The base model it was scored on is named in", *base_model_lines(base, model_name, "base_model.json"), "",
             "Serve it with vLLM, from vLLM's own environment (on a CPU, `bash scripts/vllm_env.sh` in the harness's",
             "repository builds one); float32 gives the greedy answers the scores were measured with:", "",
             "```bash", "export VLLM_CPU_KVCACHE_SPACE=1   # on a CPU: the KV cache, in GiB",
             f"python -m vllm.entrypoints.openai.api_server --model {shlex.quote(base)} --dtype float32 "
             f"--max-model-len {served_window(context)} --host 127.0.0.1{flag}", "```", "",
             "(`--host 127.0.0.1` answers this machine alone; give the address other machines reach it at to serve "
             "them.)", ""]
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
