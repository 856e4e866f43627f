"""manage.py commands in the test's own process: what they print, as an operator sees it."""

from __future__ import annotations

import io

from django.core.management import call_command


def run_command(*args: str) -> tuple[str, str]:
    """Run ``manage.py <args>`` in-process; its standard output and standard error."""
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()
