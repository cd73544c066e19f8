"""``python -m perank.compare ...`` is ``perank compare ...``."""

import sys

from perank.compare.cli import main

sys.exit(main())
