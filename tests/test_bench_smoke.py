"""A tiny run of the deadline-rush benchmark (bench/), so that it keeps working: every phase
runs through the plugin's client against gunicorn, and a byte that differs from what was
uploaded makes the run fail."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

pytest.importorskip("nbgrader_exchange.client")

import bench.workload
from bench.common import Phase, client_files, server_under_test
from bench.rush import run_rush
from bench.workload import (
    NOTEBOOKS,
    Workload,
    check_directory,
    digests,
    hold_checks,
    same_files,
)
from tests.harness import REPO
from tests.harness.postgres import available as postgres_available
from tests.harness.process import alive

pytestmark = pytest.mark.sqlite_only

PHASES = [
    "release",
    "fetch",
    "submit",
    "collect",
    "collect_concurrent",
    "release_feedback",
    "fetch_feedback",
]


def small(students: int) -> Workload:
    return Workload(students, notebook_size=20_000, data_size=300_000, feedback_size=5_000)


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("bench-server")
    with server_under_test(database="sqlite", workers=1, threads=4, workdir=workdir) as target:
        yield target


def test_a_small_rush_passes_every_phase_with_every_byte_checked(target, tmp_path):
    report = run_rush(
        target,
        students=3,
        concurrency=2,
        workload=small(3),
        workdir=tmp_path,
        course="smoke1",
        log=lambda line: None,
    )
    assert report.ok, report.markdown()
    summary = {row["phase"]: row for row in (p.summary() for p in report.phases)}
    assert list(summary) == PHASES
    assert all(
        row["ops"] == 3
        for name, row in summary.items()
        if name not in ("release", "release_feedback")
    )
    # Feedback goes as the plugin sends it: the listing, then all three students in one batch.
    assert summary["release_feedback"]["ops"] == 2
    assert summary["release_feedback"]["batches"] == 1
    # Collecting downloads each student's notebooks and the shared data file once.
    assert summary["collect"]["files_downloaded"] == 3 * len(NOTEBOOKS) + 1
    assert summary["collect"]["data_file_downloads"] == 1
    assert report.totals["server_peak_rss_MB"] > 0
    assert "RESULT: OK" in report.markdown()


class Tampered(Workload):
    """Expects, when checking a collect, a byte that differs from what the students
    uploaded."""

    def collected(self, submitted=None):
        made = submitted or {student: self.submission(student) for student in self.names}
        changed = {}
        for student, files in made.items():
            data = bytearray(files[NOTEBOOKS[0]])
            data[-3] ^= 1
            changed[student] = {**files, NOTEBOOKS[0]: bytes(data)}
        return super().collected(changed)


@pytest.mark.parametrize("held", [True, False], ids=["checked-after", "checked-in-phase"])
def test_the_rush_refuses_to_report_success_when_a_byte_differs(
    target, tmp_path, monkeypatch, held
):
    if not held:  # as at 2000 students: no room to keep the files until the phase ends
        monkeypatch.setattr(bench.workload, "HOLD_BYTES", 0)
    tampered = Tampered(2, notebook_size=20_000, data_size=300_000, feedback_size=5_000)
    report = run_rush(
        target,
        students=2,
        concurrency=2,
        workload=tampered,
        workdir=tmp_path,
        course=f"smoke2{'h' if held else 'i'}",
        log=lambda line: None,
    )
    assert not report.ok
    assert report.settings["checks_held"] is held
    [error] = next(p for p in report.phases if p.name == "collect").errors
    assert f"{NOTEBOOKS[0]} differs" in error
    again = next(p for p in report.phases if p.name == "collect_concurrent").errors
    assert len(again) == 2 and all(f"{NOTEBOOKS[0]} differs" in e for e in again)
    assert "RESULT: FAILED" in report.markdown()
    assert not list(tmp_path.rglob("*.ipynb"))  # every student's files removed, checked or not


def test_a_check_held_back_runs_when_the_phase_settles_and_its_failure_counts():
    phase = Phase("fetch")
    checked: list[int] = []

    def check(result: int) -> None:
        checked.append(result)
        if result == 2:
            raise AssertionError("student 2's file differs")

    for n in (1, 2, 3):
        assert phase.run(lambda n=n: n, check, later=True) == n
    assert checked == [] and phase.errors == [] and phase.ops == 3
    phase.settle()
    assert checked == [1, 2, 3]
    assert phase.errors == ["AssertionError: student 2's file differs"]
    phase.settle()  # each held check runs once
    assert checked == [1, 2, 3]
    phase.run(lambda: 4, check)  # not held: at once, as before
    assert checked == [1, 2, 3, 4]


def test_checks_wait_only_while_every_operations_files_fit(monkeypatch):
    """Bytes and digests both count with their sizes, summed over every operation."""
    monkeypatch.setattr(bench.workload, "HOLD_BYTES", 100)
    assert hold_checks([{"a.ipynb": b"x" * 60}, {"b.html": (40, "0" * 64)}])
    assert not hold_checks([{"a.ipynb": b"x" * 60}, {"b.html": (41, "0" * 64)}])
    assert not hold_checks({"a.ipynb": b"x" * 34} for _ in range(3))


def test_a_check_against_digests_finds_a_changed_byte_or_a_missing_file(tmp_path):
    files = {"a.html": b"<p>one</p>", "sub/b.html": b"<p>two</p>"}
    for path, data in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(data)
    check_directory(tmp_path, digests(files), "feedback")
    (tmp_path / "sub/b.html").write_bytes(b"<p>twO</p>")
    with pytest.raises(AssertionError, match=r"feedback: sub/b\.html differs"):
        check_directory(tmp_path, digests(files), "feedback")
    (tmp_path / "sub/b.html").unlink()
    with pytest.raises(AssertionError, match="files"):
        check_directory(tmp_path, digests(files), "feedback")


def test_what_a_collect_is_checked_against_is_each_students_submission():
    """Made before the clock (notebooks as digests, the shared data file as bytes), and
    as strict as the bytes themselves: a changed byte, a missing or extra file fails."""
    work = Workload(2)
    expected = work.collected()
    # From the submissions a rush made before its submit: the same, and made from them.
    made = {student: work.submission(student) for student in work.names}
    assert work.collected(made) == expected
    made[work.names[0]] = {**made[work.names[0]], NOTEBOOKS[0]: b"another notebook"}
    assert work.collected(made)[work.names[0]] != expected[work.names[0]]
    for student in work.names:
        got = work.submission(student)
        assert same_files(got, expected[student])
        assert not same_files(got, expected[next(s for s in work.names if s != student)])
        changed = dict(got, **{NOTEBOOKS[0]: got[NOTEBOOKS[0]][:-1] + b"!"})
        assert not same_files(changed, expected[student])
        data = next(p for p in got if p not in NOTEBOOKS)
        changed = dict(got, **{data: got[data][:-1] + bytes([got[data][-1] ^ 1])})
        assert not same_files(changed, expected[student])
        assert not same_files({p: d for p, d in got.items() if p != data}, expected[student])
        assert not same_files({**got, "extra.txt": b""}, expected[student])


@pytest.mark.parametrize("where", ["memory", "disk"])
def test_the_clients_files_are_removed_even_when_the_run_fails(where):
    with pytest.raises(RuntimeError), client_files(where, "exchange-smoke-") as scratch:
        (scratch / "alice").mkdir()
        (scratch / "alice" / "ps1.ipynb").write_bytes(b"x" * 1000)
        raise RuntimeError("a phase failed")
    assert not scratch.exists()
    if where == "memory":
        assert scratch.parent.as_posix() == "/dev/shm"
    with pytest.raises(ValueError, match="memory or disk"), client_files("tape", "x-"):
        pass


def test_the_ngshare_side_of_the_comparison_runs_every_phase():
    """bench/ngshare_rush.py, the other half of RESULTS.md's side by side, against ngshare
    0.6.0 (``make ngshare``) with two students: every phase, every byte checked."""
    from bench.ngshare_rush import run

    report = run(2, 2, log=lambda line: None)
    assert report["ok"], report["errors"]
    assert [row["phase"] for row in report["phases"]] == PHASES
    assert all(row["ops"] == 2 for row in report["phases"] if row["phase"] != "release")


def _rushed(target, workdir: Path, course: str) -> Workload:
    """Three students' rush on ``course``, for a phase run again after it."""
    work = small(3)
    report = run_rush(
        target,
        students=3,
        concurrency=2,
        workload=work,
        workdir=workdir,
        course=course,
        log=lambda line: None,
    )
    assert report.ok, report.markdown()
    return work


def test_the_feedback_phase_alone_runs_again_with_every_byte_checked(target, tmp_path):
    from bench.feedback_phase import repeat_phase

    work = _rushed(target, tmp_path / "rush", "smoke3")
    (tmp_path / "again").mkdir()
    rows = repeat_phase(
        target, work, concurrency=2, repeat=2, pause=0, scratch=tmp_path / "again", course="smoke3"
    )
    assert len(rows) == 2
    assert [set(row) for row in rows] == [{"wall_s", "server", "clients", "weed", "postgres"}] * 2
    assert list((tmp_path / "again").iterdir()) == []  # each student's files checked, removed
    # Checked against what was released: other feedback than the rush's fails the run.
    other = Workload(3, notebook_size=20_000, data_size=300_000, feedback_size=5_001)
    with pytest.raises(AssertionError, match=r"student000\d's feedback: .* differs"):
        repeat_phase(
            target,
            other,
            concurrency=2,
            repeat=1,
            pause=0,
            scratch=tmp_path / "again",
            course="smoke3",
        )


def test_the_submit_phase_alone_records_every_submission_again(target, tmp_path):
    from bench.submit_phase import repeat_phase

    work = _rushed(target, tmp_path / "rush", "smoke4")
    rows = repeat_phase(
        target,
        work,
        at_once=[1, 3],
        repeat=1,
        pause=0,
        caches=tmp_path / "rush" / "caches",
        course="smoke4",
    )
    assert [row["at_once"] for row in rows] == [1, 3]
    assert all(row["p95_ms"] >= row["p50_ms"] > 0 and row["server"] > 0 for row in rows)
    # Each answer must count the files sent (checked in repeat_phase); a student not in
    # the course fails the run, with the service's sentence.
    bad = small(4)
    with pytest.raises(AssertionError, match="Could not submit"):
        repeat_phase(
            target,
            bad,
            at_once=[2],
            repeat=1,
            pause=0,
            caches=tmp_path / "rush" / "caches",
            course="smoke4",
        )


def test_the_http_request_costs_count_the_servers_cpu_and_refuse_an_error(target):
    from bench.http_requests import measure

    healthz = (f"{target.url.rstrip('/')}/healthz", {})
    row = measure(
        target.sampler.cpu_seconds,
        lambda _: healthz,
        ["a", "b"],
        count=40,
        concurrency=4,
        keep_alive=True,
    )
    assert row["wall_s"] > 0 and row["server_ms"] > 0 and row["client_ms"] > 0
    missing = (f"{target.url.rstrip('/')}/api/v1/courses/nowhere", {})
    with pytest.raises(AssertionError, match=r"nowhere: 40[14]"):
        measure(
            target.sampler.cpu_seconds,
            lambda _: missing,
            ["a"],
            count=2,
            concurrency=1,
            keep_alive=False,
        )


def test_idle_rss_measures_the_master_and_every_worker(target):
    from bench.idle_rss import memory

    figures = memory(target, settle=0, samples=2)
    assert len(figures["per_process_rss_MB"]) == 1 + target.workers
    assert figures["rss_MB"] >= figures["pss_MB"] >= figures["uss_MB"] > 10
    assert abs(sum(figures["per_process_rss_MB"]) - figures["rss_MB"]) < 1


def test_the_rss_sampler_counts_a_child_started_or_ended_after_it_looked(tmp_path, monkeypatch):
    """The sampler looks for the server's children once a second, not at every sample: a
    worker that a master starts later still counts within that second, and one that has
    ended stops counting at once."""
    from bench.common import RssSampler

    monkeypatch.setattr(RssSampler, "CHILDREN_EVERY", 0.3)
    ready = tmp_path / "ready"
    # A parent that starts a child holding 200 MB once told to (by a file), then waits.
    script = textwrap.dedent(
        f"""
        import pathlib, subprocess, sys, time
        while not pathlib.Path({str(tmp_path / "go")!r}).exists():
            time.sleep(0.02)
        child = subprocess.Popen([sys.executable, "-c",
            "import pathlib, time; b = bytearray(200 * 2**20); b[::4096] = b'x' * len(b[::4096]); "
            "pathlib.Path({str(ready)!r}).touch(); time.sleep(60)"])
        child.wait()
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script])
    try:
        sampler = RssSampler(parent.pid)
        alone = sampler.current(fresh=False)
        (tmp_path / "go").touch()
        deadline = time.monotonic() + 30
        while not ready.exists():
            assert time.monotonic() < deadline, "the child did not start"
            time.sleep(0.02)
        time.sleep(0.35)  # past CHILDREN_EVERY: the next sample looks again
        assert sampler.current(fresh=False) > alone + 150e6
        (child,) = psutil.Process(parent.pid).children()
        child.kill()
        child.wait(10)
        assert sampler.current(fresh=False) < alone + 50e6
    finally:
        for leftover in psutil.Process(parent.pid).children(recursive=True):
            leftover.kill()
        parent.kill()
        parent.wait()


def test_the_collect_bookkeeping_benchmark_writes_its_figures(tmp_path, capsys):
    from bench.collect_cache import main

    assert main(["--students", "50", "--gradebook", "--json", str(tmp_path / "cache.json")]) == 0
    report = json.loads((tmp_path / "cache.json").read_text())
    assert (report["students"], report["files_per_student"]) == (50, 3)
    assert report["moved_ms_last_students"] >= 0 and report["cpu_s"] >= 0
    assert report["gradebook_new_students_wall_s"] > 0
    assert report["gradebook_nothing_changes_cpu_s"] >= 0
    assert json.loads(capsys.readouterr().out) == report


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL's server is not installed")
def test_a_benchmark_stopped_by_sigterm_leaves_no_server_and_no_directory(tmp_path):
    """``kill`` or ``timeout`` stops a benchmark as Ctrl-C does. Before, the process died at
    once, and the throwaway PostgreSQL, a daemon of its own, kept running with its data."""
    workdir = tmp_path / "run"
    ready = tmp_path / "ready"
    script = textwrap.dedent(
        f"""
        import time
        from bench.common import server_under_test
        with server_under_test(database="postgres", workers=1, threads=1,
                               workdir={str(workdir)!r}) as target:
            pid = (target.postgres.dir / "data" / "postmaster.pid").read_text().split()[0]
            open({str(ready)!r}, "w").write(f"{{pid}} {{target.server.process.pid}} "
                                            f"{{target.postgres.dir}}")
            time.sleep(300)
        """
    )
    bench = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() or not ready.read_text():
            assert bench.poll() is None, "the benchmark's server did not start"
            assert time.monotonic() < deadline, "the benchmark's server took over 120 s"
            time.sleep(0.2)
        postmaster, gunicorn, cluster = ready.read_text().split()
        assert alive(int(postmaster)) and alive(int(gunicorn))
        bench.send_signal(signal.SIGTERM)
        status = bench.wait(timeout=60)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    servers = {"PostgreSQL": int(postmaster), "gunicorn": int(gunicorn)}
    left = [name for name, pid in servers.items() if alive(pid)]
    for pid in servers.values():  # if this test fails, it leaves nothing running either
        if alive(pid):
            os.kill(pid, signal.SIGTERM)
    if Path(cluster).parent.exists():
        left.append("PostgreSQL's directory")
        shutil.rmtree(Path(cluster).parent, ignore_errors=True)
    assert not left, f"still there after SIGTERM: {', '.join(left)}"
    assert not workdir.exists()
    assert status == 128 + signal.SIGTERM  # SystemExit's status, not death by the signal
