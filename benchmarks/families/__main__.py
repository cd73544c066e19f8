"""``python -m families`` (with ``benchmarks/`` on the path): the driver, or one configuration's worker."""

from .cli import main

main()
