"""Per-person limits as the plugin meets them, against a live server with small limits: a
429 is one sentence saying when to try again and is never retried (no hammering), a quota
refusal is one sentence, through the client and through ``nbgrader submit``."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

from nbgrader_exchange.client import ExchangeClient, ServiceError
from nbgrader_exchange.files import entry_from_bytes
from tests.harness.live import LiveServer

from .support import Person, Service

COURSE = "lim101"
INES, SAM, TIA, UMA = "lim-ines", "lim-sam", "lim-tia", "lim-uma"
PER_MINUTE = 2
QUOTA = 200_000
SUBMIT = f"courses/{COURSE}/assignments/ps1/submissions"


@pytest.fixture(scope="module")
def limited(tmp_path_factory) -> Iterator[dict[str, Any]]:
    server = LiveServer(
        env={
            "EXCHANGE_UPLOADS_PER_MINUTE": str(PER_MINUTE),
            "EXCHANGE_SUBMISSION_QUOTA": str(QUOTA),
        }
    )
    with server:
        service = Service(server=server, admin_token=server.create_api_token("adm", staff=True))
        tokens = service.tokens(INES, SAM, TIA, UMA)
        service.create_course(COURSE, INES, [SAM, TIA, UMA])
        with ExchangeClient(server.url, tokens[INES]) as client:
            client.upload_bundle(
                f"courses/{COURSE}/assignments/ps1/release",
                [entry_from_bytes("ps1.ipynb", b'{"cells": []}')],
            )
        yield {"server": server, "tokens": tokens, "root": tmp_path_factory.mktemp("limits")}


def _submissions_answered(server: LiveServer, status: int) -> int:
    pattern = re.compile(rf'"POST /api/v1/{SUBMIT} HTTP/1\.1" {status} ')
    return len(pattern.findall(server.log()))


def test_a_429_is_one_sentence_with_the_wait_and_is_not_retried(limited):
    server = limited["server"]
    client = ExchangeClient(server.url, limited["tokens"][SAM], retries=3, backoff=0.5)
    with client:
        for number in range(PER_MINUTE):
            client.upload_bundle(SUBMIT, [entry_from_bytes("ps1.ipynb", b'{"n": %d}' % number)])
        before = _submissions_answered(server, 429)
        started = time.monotonic()
        with pytest.raises(ServiceError) as refused:
            client.upload_bundle(SUBMIT, [entry_from_bytes("ps1.ipynb", b"{}")], what="submit")
        elapsed = time.monotonic() - started
    message = str(refused.value)
    assert refused.value.status == 429 and refused.value.code == "rate_limited"
    match = re.fullmatch(
        rf"Could not submit now: the exchange server at {re.escape(server.url)} said: You "
        rf"have sent {PER_MINUTE} submissions in the last minute, the most allowed; try "
        r"again in (\d+) seconds\.",
        message,
    )
    assert match, message
    assert 1 <= int(match.group(1)) <= 60
    # Asked once, answered once: no retry, no backoff sleep.
    time.sleep(0.5)  # the access log line may trail the answer
    assert _submissions_answered(server, 429) == before + 1
    assert elapsed < 0.5 + 5


def test_nbgrader_submit_over_the_rate_says_when_to_try_again(limited):
    root, tokens = limited["root"], limited["tokens"]
    tia = Person(TIA, root, limited["server"].url, tokens[TIA], course_id=COURSE)
    tia.nbgrader("fetch_assignment", "ps1")
    # The allowance used up quickly (an nbgrader run may take longer than the window).
    with ExchangeClient(limited["server"].url, tokens[TIA]) as client:
        for number in range(PER_MINUTE):
            client.upload_bundle(SUBMIT, [entry_from_bytes("ps1.ipynb", b'{"t": %d}' % number)])
    result = tia.nbgrader("submit", "ps1", check=False)
    assert not result.ok
    assert "Traceback" not in result.output, result.output
    assert re.search(
        r"Could not submit ps1 to course lim101 now: the exchange server at \S+ said: You have "
        r"sent 2 submissions in the last minute, the most allowed; try again in \d+ seconds\.",
        result.output,
    ), result.output


def test_over_the_quota_is_one_sentence(limited):
    with ExchangeClient(limited["server"].url, limited["tokens"][UMA]) as client:
        with pytest.raises(ServiceError) as refused:
            client.upload_bundle(
                SUBMIT, [entry_from_bytes("big.bin", b"u" * (QUOTA + 1))], what="submit ps1"
            )
    assert refused.value.status == 413 and refused.value.code == "quota_exceeded"
    assert str(refused.value).startswith(
        f"Could not submit ps1: the exchange server at {limited['server'].url} answered 413: "
        f"This submission would bring your files in {COURSE} to 195.3 KiB, over the quota of "
        "195.3 KiB per student and course (you use 0 bytes)."
    )
