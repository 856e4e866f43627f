"""A worker's memory measures, outside gunicorn: the idle trimmer trims once per quiet spell
and never while requests keep coming; a deferred module is the real one for everyone who
imported it, loaded once however many threads reach for it at once. The live worker's side
(no module loaded that it does not use, a trim once idle) is in test_lean_worker.py."""

from __future__ import annotations

import ctypes
import subprocess
import sys
import textwrap
import time

from exchange_site import lean, memory


def trims_after(trimmer: memory.IdleTrimmer, count: int, *, within: float = 10.0) -> int:
    """The trimmer's count once it reaches ``count`` (or ``within`` seconds have passed)."""
    deadline = time.monotonic() + within
    while trimmer.trims < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return trimmer.trims


def test_the_trimmer_waits_for_a_quiet_spell_and_trims_once():
    libc = ctypes.CDLL(None)
    trimmer = memory.IdleTrimmer(lambda: libc.malloc_trim(0), quiet=1.0)
    busy_until = time.monotonic() + 2.5
    while time.monotonic() < busy_until:  # a request every 0.05 s: never quiet
        trimmer.activity(signal=None, sender=None)
        time.sleep(0.05)
    assert trimmer.trims == 0
    assert trims_after(trimmer, 1) == 1
    time.sleep(1.5)  # no request since: nothing more to give back
    assert trimmer.trims == 1
    trimmer.activity()
    assert trims_after(trimmer, 2) == 2


def test_lean_malloc_is_set_up_once_and_hears_every_request(monkeypatch):
    from django.core.signals import request_finished, request_started

    monkeypatch.setattr(memory, "_trimmer", None)
    trimmer = memory.lean_malloc()
    # Both of Django's request signals reach the trimmer (disconnect says whether they did).
    heard = [
        request_started.disconnect(dispatch_uid=memory.RECEIVER_IDS[0]),
        request_finished.disconnect(dispatch_uid=memory.RECEIVER_IDS[1]),
    ]
    assert heard == [True, True]
    assert trimmer is not None
    assert memory.lean_malloc() is trimmer
    trimmer.activity()  # what the signals call
    assert trims_after(trimmer, 1) == 1


DEFERRED = textwrap.dedent(
    """
    import sys, threading
    from exchange_site import lean

    assert lean.defer("yaml", "requests", "sys") == ["yaml", "requests"]
    import yaml
    import requests
    from requests import HTTPError  # noqa: F401
    print("yaml.composer" in sys.modules, "urllib3" in sys.modules)

    # Eight threads reach for the deferred module at once: one module, loaded once.
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(yaml.safe_load)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    import yaml as again
    print(len(set(seen)), type(sys.modules["yaml"]).__name__, again.safe_load("a: [1, 2]"))
    print(yaml.safe_load("b: 3"), yaml.__version__ == again.__version__)
    import requests.auth
    print(requests.auth.HTTPBasicAuth is sys.modules["requests"].auth.HTTPBasicAuth)
    """
)


def test_a_deferred_module_loads_on_first_use_once():
    done = subprocess.run([sys.executable, "-c", DEFERRED], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "False True",  # `from requests import HTTPError` loaded requests; yaml not yet
        "1 module {'a': [1, 2]}",
        "{'b': 3} True",
        "True",
    ]


def test_defer_leaves_loaded_modules_alone():
    assert lean.defer("sys", "exchange_site.lean") == []
    assert not isinstance(sys.modules["sys"], lean.Deferred)


def test_a_deferred_module_is_the_real_one_for_its_importers(tmp_path, monkeypatch):
    (tmp_path / "deferred_example.py").write_text("VALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        assert lean.defer("deferred_example") == ["deferred_example"]
        import deferred_example

        assert isinstance(deferred_example, lean.Deferred)
        assert deferred_example.VALUE == 42
        assert not isinstance(sys.modules["deferred_example"], lean.Deferred)
        assert sys.modules["deferred_example"].VALUE == 42
    finally:
        sys.modules.pop("deferred_example", None)


def test_lean_malloc_does_nothing_without_glibcs_functions(monkeypatch):
    class Musl:  # musl's libc: mallopt is a stub, malloc_trim does not exist
        def mallopt(self, option: int, value: int) -> int:
            raise AssertionError("not called without malloc_trim")

    monkeypatch.setattr(memory, "_libc", Musl)
    monkeypatch.setattr(memory, "_trimmer", None)
    assert memory.lean_malloc() is None
