"""Course rosters from JupyterHub groups (nbgrader-<course>, formgrade-<course>): the rules,
and ``sync_hub_groups`` against a small HTTP server answering ``/hub/api/groups`` in pages as
JupyterHub does (the same command against a real hub is in tests/test_jupyterhub.py)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from courses.models import AuditEvent, Membership
from hub.groups import roles_from_groups
from tests.harness.jsonserver import JsonServer, Request


def roster(course) -> dict[str, str]:
    return dict(Membership.objects.filter(course=course).values_list("user__username", "role"))


def test_group_names_give_roles_instructor_winning():
    groups = ["nbgrader-phys101", "formgrade-phys101", "nbgrader-chem", "nbgrader-", "staff"]
    assert roles_from_groups(groups) == {"phys101": "instructor", "chem": "student"}
    assert roles_from_groups(["formgrade-a", "nbgrader-a"]) == {"a": "instructor"}


class FakeHubGroups:
    """Answers ``/hub/api/groups`` two groups a page, as a paginating JupyterHub does."""

    def __init__(self, groups: dict[str, list[str]], *, status: int = 200) -> None:
        self.groups = groups
        self.status = status
        self.tokens: list[str] = []
        self.server = JsonServer(self._respond)
        self.api_url = self.server.api_url

    def _respond(self, request: Request) -> tuple[int, dict]:
        self.tokens.append(request.headers.get("Authorization", ""))
        offset, limit = int(request.query["offset"]), 2  # small pages, to test paging
        names = sorted(self.groups)
        items = [{"name": n, "users": self.groups[n]} for n in names[offset : offset + limit]]
        more = offset + limit < len(names)
        next_page = {"offset": offset + limit} if more else None
        return self.status, {"items": items, "_pagination": {"next": next_page}}

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def hub_groups(settings):
    fakes = []

    def make(groups: dict[str, list[str]], **kwargs) -> FakeHubGroups:
        fake = FakeHubGroups(groups, **kwargs)
        fakes.append(fake)
        settings.JUPYTERHUB_API_URL = fake.api_url
        settings.JUPYTERHUB_API_TOKEN = "service-token"
        return fake

    yield make
    for fake in fakes:
        fake.stop()


def test_sync_hub_groups_dry_run_then_apply(course, people, hub_groups):
    fake = hub_groups(
        {
            "nbgrader-phys101": ["sam", "uma", "vic"],
            "formgrade-phys101": ["ines", "wes"],
            "nbgrader-nosuch": ["sam"],
            "other": ["zed"],
        }
    )
    out = StringIO()
    call_command("sync_hub_groups", "--dry-run", stdout=out)
    assert "uma would become student in phys101." in out.getvalue()
    assert "3 roster changes (dry run)." in out.getvalue()
    assert "uma" not in roster(course)
    out = StringIO()
    call_command("sync_hub_groups", stdout=out)
    assert "wes is now instructor in phys101." in out.getvalue()
    assert roster(course) == {
        "ines": "instructor",
        "gus": "grader",
        "sam": "student",
        "tia": "student",
        "uma": "student",
        "vic": "student",
        "wes": "instructor",
    }
    assert set(fake.tokens) == {"token service-token"}
    # Through add_member, so audited like any roster change.
    assert AuditEvent.objects.filter(action="roster_changed", student_name="wes").exists()


def test_sync_hub_groups_says_what_the_hub_needs(db, hub_groups, settings):
    hub_groups({}, status=403)
    with pytest.raises(CommandError, match="list:groups and read:groups"):
        call_command("sync_hub_groups")
    settings.JUPYTERHUB_API_URL = "http://127.0.0.1:9/hub/api"
    with pytest.raises(CommandError, match="JupyterHub did not answer"):
        call_command("sync_hub_groups")
    settings.JUPYTERHUB_API_URL = ""
    with pytest.raises(CommandError, match="JUPYTERHUB_API_URL"):
        call_command("sync_hub_groups")
