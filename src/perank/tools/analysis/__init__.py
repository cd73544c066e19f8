"""Analysis of checkpoints and runs.

- :mod:`~perank.tools.analysis.eval_small` (``perank eval-small``): a PE-Rank checkpoint on DL19/DL20 with a
  persistent embedding cache, for evaluating checkpoints while training goes on;
- :mod:`~perank.tools.analysis.first_step_agreement` (``perank first-step-agreement``): how far a checkpoint's
  first decoding step follows the dense teacher;
- :mod:`~perank.tools.analysis.runs_table` (``perank runs-table``): one markdown table of runs' metrics and cost.
"""
