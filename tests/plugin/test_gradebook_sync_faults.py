"""Collect when the roster cannot be read: the submissions are collected all the same, the
gradebook keeps its names, and the log says why (the failure is injected)."""

from __future__ import annotations

import logging
import shutil

import pytest
from nbgrader.api import Gradebook

from nbgrader_exchange.client import ExchangeClient
from nbgrader_exchange.errors import ServiceError
from tests.harness import BIN

from .support import Actor, answer, plugin_config, write_source

COURSE = "sync101"
IVY, SAL = "sync-ivy", "sync-sal"


@pytest.fixture(autouse=True)
def _alembic_on_path(monkeypatch):
    monkeypatch.setenv("PATH", f"{BIN}:/usr/bin:/bin")


def test_collect_survives_an_unreadable_roster(service, tmp_path, monkeypatch, caplog):
    tokens = service.tokens(IVY, SAL)
    service.create_course(COURSE, IVY, [SAL])
    service.api(
        "PUT", f"courses/{COURSE}/members/{SAL}", json={"role": "student", "first_name": "Sal"}
    )

    def actor(name: str) -> Actor:
        (tmp_path / name).mkdir()
        cfg = plugin_config(service.url, tokens[name], tmp_path / f"{name}-cache")
        return Actor(name, tmp_path / name, cfg)

    ivy, sal = actor(IVY), actor(SAL)
    write_source(ivy.work)
    shutil.copytree(ivy.work / "source" / "ps1", ivy.work / "release" / "ps1")
    ivy.run("ReleaseAssignment", COURSE, "ps1")
    sal.run("FetchAssignment", COURSE, "ps1")
    answer(sal.work / "ps1" / "ps1.ipynb")
    sal.run("Submit", COURSE, "ps1")

    real_get = ExchangeClient.get

    def roster_down(self, path, *args, **kwargs):
        if path.endswith("/members"):
            raise ServiceError("The exchange service answered 503: the roster is unavailable.")
        return real_get(self, path, *args, **kwargs)

    monkeypatch.setattr(ExchangeClient, "get", roster_down)
    with caplog.at_level(logging.WARNING):
        ivy.run("Collect", COURSE, "ps1")
    assert (ivy.work / "submitted" / SAL / "ps1" / "ps1.ipynb").is_file()
    assert "The gradebook keeps its student names" in caplog.text
    with Gradebook(f"sqlite:///{ivy.work / 'gradebook.db'}", COURSE) as gb:
        assert [s.id for s in gb.students] == []
