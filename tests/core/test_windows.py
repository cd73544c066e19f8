"""The sliding-window schedule: back to front, always reaching the top of the list."""

from __future__ import annotations

import pytest

from perank.ranking.sliding_window import sliding_windows


def test_top100_gives_nine_windows_back_to_front():
    windows = sliding_windows(100, 20, 10)
    assert len(windows) == 9
    assert windows[0] == (80, 100) and windows[1] == (70, 90) and windows[-1] == (0, 20)
    assert all(end - start == 20 for start, end in windows)


@pytest.mark.parametrize("n", [1, 5, 19, 20])
def test_one_window_when_the_list_fits(n):
    assert sliding_windows(n, 20, 10) == [(0, n)]


def test_empty_list_has_no_window():
    assert sliding_windows(0) == []


def test_last_window_reaches_the_top_when_steps_do_not_divide():
    # RankGPT's loop would stop after (5, 25) and never rank the first five passages
    assert sliding_windows(25, 20, 10) == [(5, 25), (0, 15)]
    assert sliding_windows(21, 20, 10) == [(1, 21), (0, 11)]


@pytest.mark.parametrize(("n", "size", "step"), [(100, 20, 10), (37, 10, 3), (1100, 20, 10), (50, 50, 25)])
def test_every_position_is_covered_and_windows_move_up(n, size, step):
    windows = sliding_windows(n, size, step)
    covered = {i for start, end in windows for i in range(start, end)}
    assert covered == set(range(n))
    assert windows[-1][0] == 0 and windows[0][1] == n
    assert all(b[1] < a[1] for a, b in zip(windows, windows[1:]))
    assert all(0 < end - start <= size for start, end in windows)


def test_bad_arguments():
    with pytest.raises(ValueError):
        sliding_windows(10, 0, 1)
    with pytest.raises(ValueError):
        sliding_windows(10, 5, 0)
    with pytest.raises(ValueError):
        sliding_windows(-1)
