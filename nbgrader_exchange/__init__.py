"""nbgrader exchange plugin for the nbgrader exchange service.

In ``nbgrader_config.py``::

    from nbgrader_exchange import configure
    configure(c, url="http://nbgrader-exchange:8000")

Nothing is read at import time: the server URL and token are looked up when a command runs
(``c.Exchange.url`` / ``c.Exchange.token``, else ``NBGRADER_EXCHANGE_URL`` and
``NBGRADER_EXCHANGE_TOKEN``, falling back to ``JUPYTERHUB_API_TOKEN``).
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any

DISTRIBUTION = "nbgrader-exchange"


def _version(package_dir: Path) -> str:
    """The project's one version, ``version`` in pyproject.toml.

    In a source checkout it is read from the pyproject.toml beside the package (so a copy
    installed elsewhere in the environment cannot disagree with the code that runs);
    installed from the wheel, from the distribution's metadata, which the build took from
    that same line.
    """
    pyproject = package_dir.parent / "pyproject.toml"
    if pyproject.is_file():
        text = pyproject.read_text(encoding="utf-8")
        if re.search(rf'^name = "{DISTRIBUTION}"$', text, re.MULTILINE):
            found = re.search(r'^version = "([^"]+)"$', text, re.MULTILINE)
            if found:
                return found.group(1)
    return metadata.version(DISTRIBUTION)


__version__ = _version(Path(__file__).resolve().parent)

# nbgrader's ExchangeFactory role -> this plugin's class.
ROLES = {
    "exchange": "nbgrader_exchange.exchange.Exchange",
    "fetch_assignment": "nbgrader_exchange.fetch_assignment.ExchangeFetchAssignment",
    "fetch_feedback": "nbgrader_exchange.fetch_feedback.ExchangeFetchFeedback",
    "release_assignment": "nbgrader_exchange.release_assignment.ExchangeReleaseAssignment",
    "release_feedback": "nbgrader_exchange.release_feedback.ExchangeReleaseFeedback",
    "list": "nbgrader_exchange.list.ExchangeList",
    "submit": "nbgrader_exchange.submit.ExchangeSubmit",
    "collect": "nbgrader_exchange.collect.ExchangeCollect",
}


def configure(c: Any, url: str | None = None, token: str | None = None, **options: Any) -> None:
    """Point every nbgrader exchange role at this plugin, in an nbgrader config object ``c``.

    ``url`` and ``token`` go to ``c.Exchange``; so does any other option of the plugin's
    ``Exchange`` (``timeout``, ``retries``, ``cache``, ``path_includes_course``...).
    """
    for role, cls in ROLES.items():
        setattr(c.ExchangeFactory, role, cls)
    if url is not None:
        c.Exchange.url = url
    if token is not None:
        c.Exchange.token = token
    for name, value in options.items():
        setattr(c.Exchange, name, value)


__all__ = ["ROLES", "__version__", "configure"]
