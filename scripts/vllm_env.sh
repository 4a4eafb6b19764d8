#!/usr/bin/env bash
# Builds vLLM's own environment and prints its python (last line). The script itself is in the package,
# harness/serving/vllm_env.sh, so that an install from the wheel has it too; this keeps a clone's command.
exec bash "$(dirname "$0")/../harness/serving/vllm_env.sh" "$@"
