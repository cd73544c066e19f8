"""The folders tests read, independent of how deep a test module sits under ``tests/``."""

from __future__ import annotations

from pathlib import Path

#: the repository root
REPO = Path(__file__).resolve().parents[2]
#: the test suite's checked-in fixtures
FIXTURES = REPO / "tests" / "fixtures"
#: tiny checkpoints in the published layouts of the peer families (see fixtures/peers/README.md)
PEERS = FIXTURES / "peers"
