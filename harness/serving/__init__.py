"""Local model servers the harness starts or attaches to: `vllm` (vLLM's OpenAI-compatible server, in its own venv).

This package speaks HTTP with the standard library only; the server's own dependencies (torch, vLLM) live in the
server's interpreter, never in the harness's.
"""
