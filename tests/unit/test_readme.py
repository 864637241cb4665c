"""The README a newcomer reads: every link it makes, and every path of the repository it names,
resolves in a clone."""

from __future__ import annotations

import re

from tests.paths import ROOT


def test_every_relative_link_and_image_of_the_readme_is_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    relative = [t for t in targets if not re.match(r"[a-z]+://", t)]
    missing = [t for t in relative if not (ROOT / t).exists()]
    assert missing == []
    assert {"docs/wallboard-1080p.png", "docs/wallboard-portrait.png"} <= set(relative)


def test_every_path_of_the_repository_the_readme_names_exists() -> None:
    """A path in backquotes under one of the repository's folders (``services/kpi/flush.py``,
    ``services/worker/``): the "Where to go next" table must follow the code when it moves.
    (``bench/results/`` holds what ``make bench`` writes, not in a clone.)"""
    readme = (ROOT / "README.md").read_text()
    roots = "services|shared|deploy|docs|bench|tests"
    named = set(re.findall(rf"`((?:{roots})/[^`<>*\s]*)`", readme))
    assert len(named) > 20
    written = "bench/results/"
    missing = sorted(p for p in named if not (ROOT / p).exists() and not p.startswith(written))
    assert missing == []
