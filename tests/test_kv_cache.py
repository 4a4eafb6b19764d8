"""The reserved key/value cache holds the same keys and values as transformers' own, written in place
(tests/test_generate.py checks the answers)."""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer

from harness.training.kv_cache import ReservedLayer


def states(rows: int, length: int, width: int, seed: int) -> torch.Tensor:
    return torch.randn(rows, 2, length, width, generator=torch.Generator().manual_seed(seed))


def assert_same(reserved: DynamicLayer, grown: DynamicLayer) -> None:
    assert reserved.get_seq_length() == grown.get_seq_length()
    assert torch.equal(reserved.keys, grown.keys) and torch.equal(reserved.values, grown.values)


def test_a_reserved_layer_holds_what_concatenation_holds_through_crops_selections_and_overflow():
    reserved, grown = ReservedLayer(capacity=7), DynamicLayer()
    seed = iter(range(100))

    def step(length: int) -> None:
        rows = grown.keys.shape[0] if grown.is_initialized and grown.get_seq_length() else 3
        keys, values = states(rows, length, 4, next(seed)), states(rows, length, 3, next(seed))  # values narrower
        returned = reserved.update(keys, values)
        grown.update(keys, values)
        assert torch.equal(returned[0], grown.keys) and torch.equal(returned[1], grown.values)
        assert_same(reserved, grown)

    step(5)  # the prompt
    step(1)
    step(1)
    assert reserved.keys.data_ptr() == reserved.key_buffer.data_ptr()  # written in place, not copied
    step(2)  # past the 7 reserved: moved to a buffer twice as long as needed, nothing lost
    buffer = reserved.key_buffer
    assert buffer.shape[-2] == 18
    step(1)
    assert reserved.key_buffer is buffer  # the next token is written in place again
    for layer in (reserved, grown):
        layer.crop(-3)
    step(1)
    indices = torch.tensor([2, 0])
    for layer in (reserved, grown):
        layer.batch_select_indices(indices)
    step(1)
    assert reserved.keys.shape[0] == 2


def test_holding_a_prefix_gives_every_row_its_keys_and_values():
    prefix = DynamicLayer()
    prefix.update(states(1, 6, 4, 0), states(1, 6, 3, 1))
    layer = ReservedLayer.holding(prefix, batch=4, capacity=10)
    expected = DynamicLayer()
    expected.update(prefix.keys.repeat_interleave(4, dim=0), prefix.values.repeat_interleave(4, dim=0))
    assert_same(layer, expected)
    more = states(4, 1, 4, 2), states(4, 1, 3, 3)
    layer.update(*more)
    expected.update(*more)
    assert_same(layer, expected)
