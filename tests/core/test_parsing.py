"""Parsing generated rankings: RankGPT's repair rules, each repair counted."""

from __future__ import annotations

import pytest

from perank.ranking.parsing import parse_permutation


def test_clean_ranking():
    order, repairs = parse_permutation("[3] > [1] > [2]", 3)
    assert order == [2, 0, 1]
    assert repairs == {"repeated": 0, "out_of_range": 0, "missing": 0}


def test_any_non_digit_separates():
    assert parse_permutation("Ranking: 2>1, then (3)\n", 3)[0] == [1, 0, 2]


def test_repeated_out_of_range_and_missing_are_repaired_and_counted():
    order, repairs = parse_permutation("[4] > [2] > [4] > [0] > [9] > [2]", 5)
    assert order == [3, 1, 0, 2, 4]  # missing 1, 3, 5 appended in input order
    assert repairs == {"repeated": 2, "out_of_range": 2, "missing": 3}


def test_empty_and_garbage_output_keeps_input_order():
    for text in ("", "I cannot rank these passages.", "[] > []"):
        order, repairs = parse_permutation(text, 4)
        assert order == [0, 1, 2, 3]
        assert repairs["missing"] == 4


def test_runaway_number_is_out_of_range():
    order, repairs = parse_permutation("1" * 5000 + " 2", 2)
    assert order == [1, 0] and repairs["out_of_range"] == 1


@pytest.mark.parametrize("n", [0, 1, 20])
def test_always_a_permutation(n):
    order, _ = parse_permutation("[20] > [1] > [7] > [7] > [100]", n)
    assert sorted(order) == list(range(n))
