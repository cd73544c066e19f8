"""The Trainer every perank runner with its own loss builds on: the loss parts and the step times in the log.

The list-trained runners (``e2rank``, ``jina-listwise``) and the pair-group runners (``cross-encoder``,
``llm-yes-no``) subclass it, so a recipe's "about N s/step" and its loss curve are read from the same
``trainer_state.json`` whichever family made it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from torch import Tensor
from transformers import Trainer

from perank.training.step_times import StepTimer


class LoggedTrainer(Trainer):
    """A Trainer whose loss is a per-batch mean, optionally a weighted sum of named parts (``loss_parts``).

    A family's ``compute_loss`` passes each part it computed to :meth:`record`; every logged line then carries
    each part's unweighted mean since the previous line and the mean seconds per step (``step_seconds``), which
    ``trainer_state.json`` keeps: every checkpoint and every recipe's model folder holds its loss curve beside
    its step times, read off the run itself.
    """

    #: the names of the loss parts, as they appear in the log
    loss_parts: ClassVar[tuple[str, ...]] = ()

    # the loss is a per-batch mean: the Trainer divides it by the gradient accumulation steps
    loss_is_scaled_for_ga = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.timer = StepTimer()
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), self.timer]
        super().__init__(*args, **kwargs)
        self._parts: dict[str, list[float]] = {name: [] for name in self.loss_parts}

    def record(self, name: str, part: Tensor) -> None:
        """Keep one batch's value of the loss part ``name`` for the next log line."""
        self._parts[name].append(float(part.detach()))

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Add the loss parts (means since the last line, unweighted) and the mean seconds per step."""
        if "loss" in logs:
            for name, values in self._parts.items():
                if values:
                    logs[name] = round(sum(values) / len(values), 4)
                    values.clear()
            seconds = self.timer.take()
            if seconds is not None:
                logs["step_seconds"] = round(seconds, 3)
        super().log(logs, *args, **kwargs)
