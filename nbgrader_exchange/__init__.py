"""nbgrader exchange plugin for the nbgrader exchange service.

In ``nbgrader_config.py``::

    from nbgrader_exchange import configure
    configure(c, url="http://nbgrader-exchange:8000")

Nothing is read at import time: the server URL and token are looked up when a command runs
(``c.Exchange.url`` / ``c.Exchange.token``, else ``NBGRADER_EXCHANGE_URL`` and
``NBGRADER_EXCHANGE_TOKEN``, falling back to ``JUPYTERHUB_API_TOKEN``).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

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


__all__ = ["ROLES", "configure"]
