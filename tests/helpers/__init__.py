"""What tests need at import time, where a fixture cannot serve: paths (:mod:`helpers.paths`), the families' tiny
configurations that ``pytest.mark.parametrize`` reads while collecting (:mod:`helpers.catalogue`) and the type of
the ``tiny_dirs`` fixture, for annotations (:mod:`helpers.tiny`). Everything else shared is a fixture in a
conftest.py. ``tests`` is on pytest's ``pythonpath`` (pyproject.toml): ``from helpers.paths import REPO``.
"""
