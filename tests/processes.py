"""What every server the tests start shares: reading its log and stopping it by its pid."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path


def read_log(path: Path) -> str:
    """The server's log so far, or nothing if it has none yet."""
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def terminate(process: subprocess.Popen | None, *, timeout: float = 30) -> None:
    """SIGTERM the process we started, wait for it, SIGKILL it if it does not stop."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:  # pragma: no cover - only when TERM is ignored
        process.kill()
        process.wait(timeout=10)
