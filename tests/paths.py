"""Where the repository is, for tests that read its files (README, docs, deploy), wherever in
the test tree they sit."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
