"""``python -m perank COMMAND ...``: the ``perank`` command (:mod:`perank.cli.main`) under any Python.

The recipes call the tools this way with the interpreter they were given (``$PY -m perank build-rank-data``),
so they need no console script on the ``PATH``.
"""

import sys

from perank.cli.main import main

sys.exit(main())
