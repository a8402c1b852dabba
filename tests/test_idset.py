"""The compact id set behind prepare's duplicate ids: set semantics on awkward keys,
through growth, against Python's set, in far less memory."""

from __future__ import annotations

import random
import sys

from voxbox.idset import IdSet, key64

TOP = (1 << 64) - 1


def test_agrees_with_a_python_set_through_growth_and_repeats():
    rng = random.Random(7)
    # Repeats, neighbours, keys equal in their low or high bits, and the extremes.
    keys = [rng.getrandbits(64) for _ in range(30_000)]
    keys += [k ^ 1 for k in keys[:2_000]] + [k & 0xFFFF for k in keys[:2_000]] + [k << 48 & TOP for k in keys[:2_000]]
    keys += keys[:5_000] + [0, 0, 1, TOP, TOP]
    rng.shuffle(keys)
    ours, ref = IdSet(capacity=16), set()
    for k in keys:
        assert ours.add(k) == (k not in ref)
        ref.add(k)
    assert len(ours) == len(ref)
    assert all(k in ours for k in ref)
    absent = [rng.getrandbits(64) for _ in range(5_000)]
    assert [k in ours for k in absent] == [k in ref for k in absent]


def test_zero_is_a_key_like_any_other():
    s = IdSet()
    assert 0 not in s and s.add(0) and not s.add(0) and 0 in s and len(s) == 1


def test_ids_take_a_quarter_of_a_python_sets_memory_or_less():
    n = 1 << 17
    s, ref = IdSet(), set()
    for i in range(n):
        k = key64(f"corpus/spk{i % 97}/utt{i}.wav")
        s.add(k)
        ref.add(k)
    python_bytes = sys.getsizeof(ref) + sum(sys.getsizeof(k) for k in ref)
    assert len(s) == n and s._table.nbytes * 4 < python_bytes


def test_key64_is_stable_and_spreads_similar_ids():
    assert key64("librispeech_0123456789abcdef") == key64("librispeech_0123456789abcdef")
    keys = {key64(f"x{i}") for i in range(10_000)}
    assert len(keys) == 10_000
