"""The sliding-window schedule of listwise reranking (RankGPT's, as PE-Rank uses it).

A listwise ranker sees ``window_size`` passages at a time. Windows move from the BACK of the list to the
front by ``step`` so that a relevant passage found deep in the list can bubble up: each window's best
passages land in the overlap with the next window, which ranks them again. With the defaults (20, 10) a
top-100 list takes 9 windows: (80, 100), (70, 90), ..., (0, 20).

One deliberate difference from RankGPT's loop: when ``n - window_size`` is not a multiple of ``step``,
RankGPT stops before the top of the list (its last window starts above 0, so the first passages are never
ranked). Here the schedule always ends with a window that starts at 0; it is then shorter than
``window_size`` (for n=25: (5, 25), (0, 15)). PE-Rank's own loop does the same, minus a redundant extra
window.
"""

from __future__ import annotations


def sliding_windows(n: int, window_size: int = 20, step: int = 10) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` half-open index ranges, in the order they must be processed.

    One window ``(0, n)`` when ``n <= window_size``; no window at all for an empty list.
    """
    if window_size < 1:
        raise ValueError(f"window_size must be at least 1, got {window_size}")
    if step < 1:
        raise ValueError(f"step must be at least 1, got {step}")
    if n < 0:
        raise ValueError(f"list length must be non-negative, got {n}")
    windows: list[tuple[int, int]] = []
    end = n
    while end > 0:
        start = max(0, end - window_size)
        windows.append((start, end))
        if start == 0:
            break
        end -= step
    return windows
