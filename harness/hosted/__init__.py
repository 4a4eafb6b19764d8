"""Hosted models behind OpenAI-compatible chat endpoints: the client (bounded concurrency, retries, timeouts, a hard
budget), and the on-disk response cache. The only importer of the `openai` package."""
