"""The test harness: every real process and stand-in the tests start, written once.

- ``process``: :class:`ManagedProcess`, the base of every server a test starts (start,
  wait until ready, stop by its own pid; it dies with the test run through
  ``PR_SET_PDEATHSIG``), and stopping a process by the pid it wrote down.
- ``ports``: free TCP ports on 127.0.0.1.
- ``live``: the exchange under gunicorn (:class:`LiveServer`), users and API tokens on it.
- ``hub``: a real JupyterHub with the exchange as a hub-managed service.
- ``one_machine``: the JupyterHub recipe of ``docs/one-machine.md``, run as the page says.
- ``seaweedfs``: an S3 store (``weed mini``).
- ``postgres``: a throwaway PostgreSQL cluster (``scripts/throwaway-postgres``).
- ``lab``: a user's real JupyterLab with its own HOME.
- ``jsonserver``: a JSON HTTP stand-in for another service, in a thread of the test.
- ``uploads``: uploads built by the plugin's own bundle code.
- ``personas``: the pytest plugin with the course's people (registered in ``conftest.py``).

``REPO`` (the checkout) and ``BIN`` (the bin directory of the tests' Python) are defined here,
once for every test.
"""

import sys as _sys
from pathlib import Path as _Path

REPO = _Path(__file__).resolve().parents[2]
"""The repository's root."""
BIN = _Path(_sys.executable).parent
"""The bin directory of the Python running the tests (gunicorn, nbgrader, jupyterhub)."""
