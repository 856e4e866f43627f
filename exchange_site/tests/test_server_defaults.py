"""Every way the project starts gunicorn gives it the same threads, timeout and keep-alive as
``exchange_site/gunicorn_conf.py``: ``make run``, the image, the chart, the one-machine guide's
hub service. They are written out in each (the image and the chart start gunicorn without
the config file), so a change to one must be made in all. The benchmarks take the threads
from the config itself (``bench.common.THREADS``)."""

from __future__ import annotations

import re

import yaml

from exchange_site import gunicorn_conf
from tests.harness import REPO

EXPECTED = {
    "threads": gunicorn_conf.threads,
    "timeout": gunicorn_conf.timeout,
    "keep-alive": gunicorn_conf.keepalive,
}


def options(text: str) -> dict[str, set[int]]:
    """The values given to ``--threads``, ``--timeout`` and ``--keep-alive`` in ``text``,
    written as on a command line (``--threads 4``, ``--threads=4``) or as a list in Python
    or JSON (``"--threads", "4"``)."""
    found: dict[str, set[int]] = {name: set() for name in EXPECTED}
    for name in EXPECTED:
        for value in re.findall(rf'--{name}(?:=|\s+|",\s*")(\d+)', text):
            found[name].add(int(value))
    return found


def test_options_reads_each_way_of_writing_them() -> None:
    text = 'a --threads 3 --timeout=20 ["--keep-alive", "9"]'
    assert options(text) == {"threads": {3}, "timeout": {20}, "keep-alive": {9}}


def test_make_run_and_the_image_start_gunicorn_as_its_config_does() -> None:
    makefile = (REPO / "Makefile").read_text()
    run = makefile[makefile.index("\nrun:") : makefile.index("\n\n", makefile.index("\nrun:"))]
    image = (REPO / "Dockerfile").read_text()
    for name, text in (("make run", run), ("Dockerfile", image)):
        given = options(text)
        assert given == {key: {value} for key, value in EXPECTED.items()}, name


def test_the_chart_starts_gunicorn_as_its_config_does() -> None:
    chart = REPO / "charts" / "nbgrader-exchange"
    values = yaml.safe_load((chart / "values.yaml").read_text())["gunicorn"]
    assert values["threads"] == EXPECTED["threads"]
    assert values["timeout"] == EXPECTED["timeout"]
    deployment = options((chart / "templates" / "deployment.yaml").read_text())
    assert deployment["keep-alive"] == {EXPECTED["keep-alive"]}


def test_the_one_machine_hub_service_starts_gunicorn_as_its_config_does() -> None:
    # It loads gunicorn_conf (--config), so keep-alive comes from there.
    guide = options((REPO / "docs" / "one-machine.md").read_text())
    assert guide["threads"] == {EXPECTED["threads"]}
    assert guide["timeout"] == {EXPECTED["timeout"]}
