"""Wall-clock time per optimizer step, written into the Trainer's log so that ``trainer_state.json`` (which every
checkpoint folder and every recipe's model folder keeps) holds the step times beside the loss curve.

A recipe's run-time estimate ("about N s/step on 2 cores") is then read off the run itself, step by step, rather
than from a separate timing, and a slow stretch (another job on the machine, a long batch) shows where it was.
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback


class StepTimer(TrainerCallback):
    """Times each optimizer step (forward, backward and update, gradient accumulation included).

    :meth:`take` returns the mean step time since it was last called and starts a new interval; a Trainer's
    ``log`` adds it as ``step_seconds`` to each logged line.
    """

    def __init__(self) -> None:
        self._started: float | None = None
        self._total = 0.0
        self._steps = 0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._started = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._started is not None:
            self._total += time.perf_counter() - self._started
            self._steps += 1
            self._started = None

    def take(self) -> float | None:
        """The mean seconds per step since the last call (None when no step ended since)."""
        if not self._steps:
            return None
        mean = self._total / self._steps
        self._total, self._steps = 0.0, 0
        return mean
