"""How the long storage operations (backup, restore, ``verify_storage``, ``gc_blobs``)
report what they do: a callable given one line at a time (the commands pass their output's
writer); by default nothing is reported."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]


def quiet(_: str) -> None:
    """Report nothing (the default ``progress``)."""
