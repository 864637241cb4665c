"""The README a newcomer reads: every link it makes resolves in a clone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_relative_link_and_image_of_the_readme_is_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    relative = [t for t in targets if not re.match(r"[a-z]+://", t)]
    missing = [t for t in relative if not (ROOT / t).exists()]
    assert missing == []
    assert {"docs/wallboard-1080p.png", "docs/wallboard-portrait.png"} <= set(relative)
