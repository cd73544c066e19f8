"""The repository's tools, each a ``perank`` command (``perank --help`` lists them; :mod:`perank.cli.main`).

- :mod:`~perank.tools.data`: training-data builders (alignment rows, ranking windows, query groups, the small
  models' query mix);
- :mod:`~perank.tools.checkpoints`: checkpoint tools (export a shipped folder, float16 weights, a projector warm
  start);
- :mod:`~perank.tools.analysis`: analysis of checkpoints and runs;
- :mod:`~perank.tools.regress`: the regression check of the shipped models (``make regress``).

They were scripts once; as modules they import the package like any other code and run from any folder. The
training recipes that chain them are shell scripts under ``recipes/``.
"""
