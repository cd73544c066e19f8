"""Training: ``deepspeed src/train.py ...`` / ``python src/train.py [--family NAME] ...``.

The PE-Rank repository's command line, kept as a launcher of :mod:`perank.cli.train` (``perank train``).
Python puts this file's folder, ``src/``, first on the module path, so the command imports this checkout's
package from any working directory, installed or not.
"""

import sys

from perank.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
