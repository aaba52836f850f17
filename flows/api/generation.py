"""Generation while the API serves, for a site with no Prefect server: a thread that runs the ``generate``
flow (``heirloom generate``, in a child process, so a crash or a leak in synthesis never takes the API down)
whenever approved texts are queued. A run that dies leaves its texts ``generating``; the next run takes
them up once they are stale (tasks.generation.queued), so no text stays queued or generating for ever."""

from __future__ import annotations

import subprocess
import sys
import threading

from catalog.tables import Catalog
from heirloom.errors import HeirloomError
from tasks.generation import queued

POLL_S = 5.0
RUN_LIMIT_S = 3600.0


class GenerationLoop:
    def __init__(self, archive: str, *, poll_s: float = POLL_S) -> None:
        self.archive = archive
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heirloom-generate", daemon=True)
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self.poll_s + 1)

    def _run(self) -> None:
        catalog = Catalog.open(self.archive)
        while not self._stop.wait(self.poll_s):
            try:
                if not queued(catalog):
                    continue
            except HeirloomError as e:
                self.last_error = str(e)
                continue
            cmd = [sys.executable, "-c", "from flows.cli import main; main()", "generate", "--archive", self.archive]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_LIMIT_S)
                self.last_error = done.stderr.strip()[-500:] or None if done.returncode else None
            except subprocess.TimeoutExpired:
                self.last_error = f"a generate run took over {RUN_LIMIT_S:.0f} s and was stopped"
