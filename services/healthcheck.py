"""The image's ``HEALTHCHECK``: ``python -m services.healthcheck`` asks ``/readyz`` of what the
container runs, so one image is right for every shape.

The command comes from the container's main process (``salespulse serve``, ``... ingest``): a
service's readiness is on its own port (``serve`` and ``api``: the API's; ``ingest``; ``kpi``:
its metrics port; ``worker``), as the settings in the environment place them. Exit 0 when it
answers 200, 1 otherwise. A command that serves nothing (``migrate``, a one-shot) has nothing
to probe.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

# command -> (the setting of its port, the port by default)
PORTS: dict[str, tuple[str, int]] = {
    "serve": ("SALESPULSE_API_PORT", 8000),
    "dev": ("SALESPULSE_API_PORT", 8000),
    "api": ("SALESPULSE_API_PORT", 8000),
    "ingest": ("SALESPULSE_INGEST_PORT", 8001),
    "kpi": ("SALESPULSE_KPI_METRICS_PORT", 8002),
    "worker": ("SALESPULSE_WORKER_PORT", 8003),
}
MAIN_PROCESS = Path("/proc/1/cmdline")
TIMEOUT_S = 4.0


def command_of(argv: Sequence[str]) -> str | None:
    """The ``salespulse`` command in a process's arguments (after an init such as
    ``docker-init --``, and the interpreter of the script), or None."""
    for i, arg in enumerate(argv):
        if Path(arg).name == "salespulse":
            return argv[i + 1] if i + 1 < len(argv) else None
    return None


def readiness_url(command: str | None, env: Mapping[str, str]) -> str | None:
    """Where ``command`` answers ``/readyz``, or None if it serves nothing."""
    if command not in PORTS:
        return None
    setting, default = PORTS[command]
    return f"http://127.0.0.1:{int(env.get(setting) or default)}/readyz"


def main(cmdline: Path = MAIN_PROCESS, env: Mapping[str, str] = os.environ) -> int:
    argv = [a.decode() for a in cmdline.read_bytes().split(b"\0") if a]
    url = readiness_url(command_of(argv), env)
    if url is None:
        return 0
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:  # noqa: S310 (http to self)
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"not ready: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
