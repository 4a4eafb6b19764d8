"""The key/value cache a generation batch writes into: one buffer per layer, allocated once for the whole batch.

transformers' `DynamicLayer` grows by `torch.cat` at every generated token, so each step copies every cached token
again, and on a CPU each copy is a little larger than the hole the last one left, so the heap grows with every
step. A reserved layer writes each step into place in a buffer sized for the prompt and the answer cap. The keys and
values it hands the attention are the same numbers (a view of the buffer instead of a fresh tensor), so every answer
is the same (tests/test_generate.py); on the demo's prompting arm generation ran x1.18 as fast, with 0.9 GiB less
peak memory (bench/RESULTS.md, 2026-12-06).

Only plain full-attention layers (`DynamicLayer` itself) are reserved; sliding-window and other layer kinds keep
their own logic, and a model that keeps another kind of cache is left to `generate`.
"""

from __future__ import annotations

import copy

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


class ReservedLayer(DynamicLayer):
    """A `DynamicLayer` whose keys and values live in one buffer of `capacity` positions per row."""

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self.key_buffer: torch.Tensor | None = None
        self.value_buffer: torch.Tensor | None = None

    @classmethod
    def holding(cls, prefix: DynamicLayer, batch: int, capacity: int) -> ReservedLayer:
        """A layer for `batch` rows that each start with `prefix`'s one row of keys and values."""
        layer = cls(capacity)
        layer.lazy_initialization(prefix.keys, prefix.values)
        keys, values = prefix.keys.expand(batch, -1, -1, -1), prefix.values.expand(batch, -1, -1, -1)
        layer._rehome(keys, values, capacity, keys, values)
        return layer

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        held = self.get_seq_length()
        end = held + key_states.shape[-2]
        if not self._in_buffer(key_states.shape[0], end):
            # first write, more than reserved, or the layer's tensors were replaced (a beam reorder, a crop to zero)
            if end > self.capacity:  # not expected (the caller reserves the answer cap): double, not per token
                self.capacity = 2 * end
            self._rehome(self.keys if held else None, self.values if held else None, self.capacity,
                         key_states, value_states)
        self.key_buffer[:, :, held:end].copy_(key_states)
        self.value_buffer[:, :, held:end].copy_(value_states)
        self.keys, self.values = self.key_buffer[:, :, :end], self.value_buffer[:, :, :end]
        return self.keys, self.values

    def _in_buffer(self, rows: int, end: int) -> bool:
        """Whether the cached tensors are still the start of the buffer, and `end` positions fit it."""
        buffer = self.key_buffer
        return (buffer is not None and end <= buffer.shape[-2] and buffer.shape[0] == rows
                and self.keys.data_ptr() == buffer.data_ptr() and self.keys.shape[0] == rows)

    def _rehome(self, keys: torch.Tensor | None, values: torch.Tensor | None, capacity: int,
                key_like: torch.Tensor, value_like: torch.Tensor) -> None:
        """Allocate the buffers for `capacity` positions, shaped as `key_like` and `value_like` are in every other
        dimension (keys and values may differ in width), and copy `keys` and `values` (if any) to their start."""
        def buffer(like: torch.Tensor) -> torch.Tensor:
            rows, heads, _, dim = like.shape
            return like.new_empty(rows, heads, capacity, dim)

        self.key_buffer, self.value_buffer = buffer(key_like), buffer(value_like)
        held = 0 if keys is None else keys.shape[-2]
        if held:
            self.key_buffer[:, :, :held].copy_(keys)
            self.value_buffer[:, :, :held].copy_(values)
        self.keys, self.values = self.key_buffer[:, :, :held], self.value_buffer[:, :, :held]


def batch_cache(model, prefix: DynamicCache | None, batch: int, capacity: int) -> DynamicCache | None:
    """The cache a batch of `batch` rows generates into, each row up to `capacity` positions: `prefix`'s cache
    repeated for every row, else an empty one. None where the model does not use transformers' default dynamic
    cache (`generate` then builds the model's own)."""
    if prefix is not None:
        cache = copy.deepcopy(prefix)
        if not isinstance(cache, DynamicCache):  # another kind of cache: repeated as it is
            cache.batch_repeat_interleave(batch)
            return cache
    else:
        config = _default_cache_config(model)
        if config is None:
            return None
        cache = DynamicCache(config=config)
    for index, layer in enumerate(cache.layers):
        if type(layer) is not DynamicLayer:
            if prefix is not None:
                layer.batch_repeat_interleave(batch)
        elif prefix is not None and layer.get_seq_length() > 0:
            cache.layers[index] = ReservedLayer.holding(layer, batch, capacity)
        else:
            cache.layers[index] = ReservedLayer(capacity)
    return cache


def _default_cache_config(model):
    """The text config from which `generate` would build a plain `DynamicCache` for this model on its own (its test,
    as in transformers 5.17 to 5.25: a decoder-only model of a kind that supports one, with no other cache asked
    for); None where it would not."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    supports = getattr(type(base), "_supports_default_dynamic_cache", None)
    config = getattr(base, "config", None)
    generation = getattr(base, "generation_config", None)
    if (supports is None or not supports() or config is None or getattr(config, "is_encoder_decoder", False)
            or getattr(generation, "cache_implementation", None) is not None):
        return None
    return config.get_text_config(decoder=True)


def growing_cache(model, prefix: DynamicCache | None, batch: int, capacity: int) -> DynamicCache | None:
    """The reference `batch_cache` is compared with (tests/test_generate.py, bench/kv_cache.py): what `generate`
    passed before it, `prefix`'s cache repeated for every row by transformers, else nothing, so that `generate`
    builds its own. Either way every layer grows by `torch.cat`."""
    if prefix is None:
        return None
    cache = copy.deepcopy(prefix)
    cache.batch_repeat_interleave(batch)
    return cache
