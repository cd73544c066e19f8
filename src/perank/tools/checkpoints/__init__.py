"""Checkpoint tools: what happens to weights between training and ``checkpoints/``.

- :mod:`~perank.tools.checkpoints.export` (``perank export-checkpoint``): a LoRA PE-Rank Trainer checkpoint to
  the small folder that ships;
- :mod:`~perank.tools.checkpoints.half_weights` (``perank half-weights``): float tensors to float16, in place;
- :mod:`~perank.tools.checkpoints.init_projector` (``perank init-projector``): a projector warm start that
  stands in for stage-1 alignment.
"""
