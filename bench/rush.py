"""The deadline rush: N students fetch, submit and fetch feedback at concurrency C, through
the plugin's own HTTP client, against gunicorn on PostgreSQL (or SQLite) and local files
(or S3). Every downloaded byte is checked against what was uploaded; any difference, lost
submission or failed operation is an error, and the run then reports FAILED and exits 1.

    python -m bench.rush --students 500 --concurrency 32

The assignment: three notebooks of about 200 KB and one 5 MB data file. Each student submits
the notebooks changed and the data file unchanged (so its bytes are not sent again); the
feedback is one 50 KB HTML file per notebook.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nbgrader_exchange import seen_release
from nbgrader_exchange.parallel import BATCHES_AT_ONCE, COLLECT_AT_ONCE, at_most
from nbgrader_exchange.submit import send_submission

from .common import (
    CLIENT_FILES,
    Phase,
    Target,
    add_server_options,
    client_files,
    counting_client,
    cpu_of_others,
    cpu_of_others_since,
    machine,
    server_under_test,
)
from .report import Report
from .workload import (
    ASSIGNMENT,
    COURSE,
    NOTEBOOKS,
    Digest,
    Workload,
    check_directory,
    digests,
    hold_checks,
    parallel,
)

# --- the run ------------------------------------------------------------------------------


def run_rush(
    target: Target,
    *,
    students: int,
    concurrency: int,
    workload: Workload | None = None,
    workdir: Path | None = None,
    course: str = COURSE,
    feedback_graders: int = BATCHES_AT_ONCE,
    collect_at_once: int = COLLECT_AT_ONCE,
    log: Callable[[str], None] = print,
) -> Report:
    """The six phases against a running server; returns the report (never raises for a
    failed operation: those are the report's errors)."""
    work = workload or Workload(students)
    names = work.names
    scratch = Path(workdir or tempfile.mkdtemp(prefix="exchange-rush-"))
    scratch.mkdir(parents=True, exist_ok=True)
    caches = scratch / "caches"  # each student's nbgrader cache
    tokens = target.tokens(
        {"bench-admin": True, "bench-instructor": False, **dict.fromkeys(names, False)}
    )
    from tests.harness import live as live_setup

    live_setup.create_course(
        target.server,
        code=course,
        admin_token=tokens["bench-admin"],
        instructor="bench-instructor",
        instructor_token=tokens["bench-instructor"],
        students=names,
    )
    from nbgrader_exchange.files import entry_from_bytes
    from nbgrader_exchange.transfer import BlobCache, DownloadStats

    phases: list[Phase] = []
    current: list[Phase] = []
    others: list[dict[int, tuple[str, float]]] = []
    problems: list[str] = []
    assignment_url = f"courses/{course}/assignments/{ASSIGNMENT}"

    def client(user: str) -> Any:
        return counting_client(
            target.url, tokens[user], lambda: current[0], connections=4 * collect_at_once
        )

    def begin(name: str) -> Phase:
        phase = Phase(name)
        current[:] = [phase]
        phases.append(phase)
        target.sampler.mark()
        phase.server_cpu = -target.sampler.cpu_seconds()
        phase.client_cpu = -time.process_time()
        others[:] = [cpu_of_others()]
        phase.started = time.perf_counter()
        log(f"phase {name} ...")
        return phase

    def end(phase: Phase) -> None:
        phase.ended = phase.ended or time.perf_counter()
        phase.server_cpu += target.sampler.cpu_seconds()
        phase.client_cpu += time.process_time()
        phase.others_cpu = cpu_of_others_since(others[0])
        phase.peak_rss = target.sampler.mark()
        phase.settle()  # the checks held back: after the clock and the CPU figures
        log(f"  {json.dumps(phase.summary())}")

    idle_rss = target.sampler.current()
    instructor = client("bench-instructor")

    # 1. release
    phase = begin("release")
    phase.run(
        lambda: instructor.upload_bundle(
            f"{assignment_url}/release",
            [entry_from_bytes(p, d) for p, d in work.release.items()],
            what="release",
        )
    )
    end(phase)

    # 2. every student fetches
    # Each student's fetched files are checked (and removed) after the phase when all of
    # them fit in HOLD_BYTES; the collect's likewise.
    hold = hold_checks(work.release for _ in names)
    phase = begin("fetch")

    def fetch(student: str) -> Path:
        dest = scratch / "fetch" / student
        with client(student) as http:
            # As the plugin's fetch_assignment into a new directory, which also remembers
            # the release in the student's nbgrader cache (for the submit).
            manifest = http.get_with_files(
                f"{assignment_url}/release/files?inline=true", what="fetch"
            )
            http.download_bundle(manifest["files"], dest, what="fetch")
            release = seen_release.from_answer(manifest)
            seen_release.remember(str(caches / student), course, ASSIGNMENT, release)
        return dest

    def check_fetch(student: str, dest: Path) -> None:
        try:
            check_directory(dest, work.release, f"{student}'s fetch")
        finally:
            shutil.rmtree(dest, ignore_errors=True)

    parallel(
        concurrency,
        names,
        lambda s: phase.run(lambda: fetch(s), lambda dest: check_fetch(s, dest), later=hold),
    )
    end(phase)

    # 3. every student submits. Their notebooks are on their disks before the deadline:
    # made before the clock (as the digests the checks use), so that the phase times the
    # exchange and not the making of 600 KB of text per student (2 ms of the clients' CPU).
    submission_files = {student: work.submission(student) for student in names}
    phase = begin("submit")
    submitted: dict[str, dict[str, Any]] = {}

    def submit(student: str) -> None:
        with client(student) as http:
            # As the plugin's submit, with the release the student's fetch remembered.
            files = submission_files[student]
            submitted[student] = send_submission(
                http,
                assignment_url,
                [entry_from_bytes(p, d) for p, d in files.items()],
                what="submit",
                cache=str(caches / student),
                course_id=course,
                assignment_id=ASSIGNMENT,
            )

    parallel(concurrency, names, lambda s: phase.run(lambda: submit(s)))
    end(phase)

    expected_collect = work.collected(submission_files)  # before the clock

    # 4. the instructor collects the latest submission of every student, as the plugin does:
    # one request for the list, then each submission's files, each distinct file once, into
    # a staging directory renamed into place (``download_into_place``), ``collect_at_once``
    # submissions at a time (collect.py's ``collect_submissions_at_once``).
    phase = begin("collect")
    stats = DownloadStats()
    collected: dict[str, dict[str, Any]] = {}
    per_submission: list[float] = []

    def collect() -> None:
        records = instructor.post(f"{assignment_url}/collect", {"latest": True}, what="collect")
        cache = BlobCache()
        (scratch / "collect").mkdir(parents=True, exist_ok=True)

        def collect_one(record: dict[str, Any]) -> None:
            collected[record["student"]] = record
            start = time.perf_counter()
            instructor.download_into_place(
                record["files"],
                scratch / "collect" / record["student"],
                what="collect",
                cache=cache,
                stats=stats,
            )
            per_submission.append(time.perf_counter() - start)

        failure = at_most(records, collect_one, at_once=collect_at_once)
        phase.ended = time.perf_counter()  # the checks below are not the collect's time
        if failure is not None:
            raise failure

    def check_collect(_: Any) -> None:
        for student in names:
            if student not in collected:
                raise AssertionError(f"{student}'s submission was not collected")
            record = collected[student]
            if record["id"] != submitted.get(student, {}).get("id"):
                raise AssertionError(
                    f"{student}: collected submission {record['id']} is not the latest"
                )
            check_directory(
                scratch / "collect" / student,
                expected_collect[student],
                f"{student}'s collected submission",
            )

    phase.run(collect, check_collect, later=True)  # the files are all there anyway
    phase.latencies = per_submission or phase.latencies
    phase.notes.update(
        collected=len(collected),
        files_downloaded=stats.downloaded_files,
        files_copied_locally=stats.reused_files,
        data_file_downloads=stats.downloaded_files - len(NOTEBOOKS) * len(collected),
    )
    if collected and stats.downloaded_files != len(NOTEBOOKS) * len(collected) + 1:
        problems.append(
            f"collect downloaded {stats.downloaded_files} files; expected "
            f"{len(NOTEBOOKS) * len(collected) + 1} (the shared data file once)"
        )
    end(phase)
    shutil.rmtree(scratch / "collect", ignore_errors=True)  # checked by now

    # 4b. the same collect with C submissions downloaded at once (graders on several
    # machines, or a plugin that collects in parallel).
    phase = begin("collect_concurrent")
    records = list(collected.values())

    def collect_one(record: dict[str, Any]) -> Path:
        dest = scratch / "collect2" / record["student"]
        with client("bench-instructor") as http:
            http.download_bundle(record["files"], dest, what="collect")
        return dest

    def check_collect_one(record: dict[str, Any], dest: Path) -> None:
        try:
            check_directory(dest, expected_collect[record["student"]], "collected again")
        finally:
            shutil.rmtree(dest, ignore_errors=True)

    parallel(
        concurrency,
        records,
        lambda r: phase.run(lambda: collect_one(r), lambda d: check_collect_one(r, d), later=hold),
    )
    end(phase)

    # 5. feedback released for every submission as nbgrader's release_feedback does through
    # the plugin: one read of the submissions listing, then the students in batches, one
    # request each, ``feedback_graders`` at once (the plugin's ``feedback_batches_at_once``).
    from nbgrader_exchange.feedback_batch import (
        FeedbackRelease,
        batches,
        post_batch,
        send_batches,
    )

    feedback = {student: work.feedback(student) for student in names}  # before the clock
    phase = begin("release_feedback")

    def feedback_batches() -> list[list[Any]]:
        listed = {s["student"]: s for s in instructor.get(f"{assignment_url}/submissions")}
        releases = []
        for student in names:
            submission = listed.get(student)
            if submission is None or submission["id"] != submitted.get(student, {}).get("id"):
                raise AssertionError(f"{student} has no submission to give feedback on")
            files = [entry_from_bytes(p, d) for p, d in feedback[student].items()]
            releases.append(FeedbackRelease(student, submission["id"], files))
        return list(batches(releases))

    grouped = phase.run(feedback_batches) or []
    send_batches(
        grouped,
        lambda ready: phase.run(
            lambda: post_batch(instructor, assignment_url, ready, what="release feedback")
        ),
        at_once=feedback_graders,
        recorded=lambda _: None,
    )
    phase.notes.update(requests=1 + len(grouped), batches=len(grouped))
    end(phase)

    # 6. every student fetches their feedback
    expected = {student: digests(feedback[student]) for student in names}
    phase = begin("fetch_feedback")

    fetch_feedback_phase(
        phase,
        client,
        names,
        assignment_url=assignment_url,
        scratch=scratch / "feedback",
        expected=expected,
        concurrency=concurrency,
    )
    end(phase)

    instructor.close()
    if workdir is None:  # a directory given is its caller's to remove
        shutil.rmtree(scratch, ignore_errors=True)
    stored = target.bytes_stored()
    totals = {
        "wall_s": round(sum(p.wall for p in phases), 1),
        "server_idle_rss_MB": round(idle_rss / 1e6),
        "server_peak_rss_MB": round(target.sampler.peak / 1e6),
        "stored_files_MB": round(stored.get("files", 0) / 1e6, 1),
        "stored_database_MB": round(stored["database"] / 1e6, 1),
        "uploaded_file_bytes_MB": round(
            (
                sum(map(len, work.release.values()))
                + sum(
                    sum(map(len, submission_files[s].values()))
                    + sum(map(len, feedback[s].values()))
                    for s in names
                )
            )
            / 1e6,
            1,
        ),
    }
    return Report(
        phases=phases,
        machine=machine(target),
        # Whether the fetched and collected files were checked after the phases' clocks.
        settings={"students": students, "concurrency": concurrency, "checks_held": hold},
        totals=totals,
        problems=problems,
    )


@contextmanager
def after_a_rush(
    args: argparse.Namespace, *, concurrency: int, prefix: str
) -> Iterator[tuple[Target, Workload, Path] | None]:
    """A server (``args``: ``database``, ``storage``, ``workers``, ``threads``,
    ``students``, ``client_files``) on which one rush of ``concurrency`` students at once
    has run, for benchmarks that repeat one of its phases: the server, the rush's workload
    and a scratch directory (the rush's files in ``rush``, the students' nbgrader caches in
    ``rush/caches``). None if the rush failed (said on stderr)."""
    with server_under_test(
        database=args.database,
        storage=args.storage,
        workers=args.workers,
        threads=args.threads,
    ) as target:
        work = Workload(args.students)
        with client_files(args.client_files, prefix) as scratch:
            report = run_rush(
                target,
                students=args.students,
                concurrency=concurrency,
                workload=work,
                workdir=scratch / "rush",
            )
            if not report.ok:
                print("the rush failed; no phase measured", file=sys.stderr)
                yield None
            else:
                yield target, work, scratch


def fetch_feedback_phase(
    phase: Phase,
    client: Callable[[str], Any],
    names: list[str],
    *,
    assignment_url: str,
    scratch: Path,
    expected: dict[str, dict[str, Digest]],
    concurrency: int,
) -> None:
    """Every student fetches their feedback as the plugin does (its files inline, in one
    request), ``concurrency`` at a time, through ``client(student)``: each student's one
    bundle is checked against ``expected`` (sizes and SHA-256s made before the clock starts)
    and removed: when the phase is settled (``Phase.settle``, after its clock) if all of
    them fit in HOLD_BYTES, otherwise as each ends. Failures are the phase's errors."""

    def fetch(student: str) -> tuple[int, Path]:
        dest = scratch / student
        with client(student) as http:
            released = http.get_with_files(
                f"{assignment_url}/feedback?inline=true", what="fetch feedback"
            )
            for feedback in released:
                http.download_bundle(feedback["files"], dest, what="fetch feedback")
        return len(released), dest

    def check(student: str, result: tuple[int, Path]) -> None:
        count, dest = result
        try:
            if count != 1:
                raise AssertionError(f"{student} sees {count} feedback bundles, not 1")
            check_directory(dest, expected[student], f"{student}'s feedback")
        finally:
            shutil.rmtree(dest, ignore_errors=True)

    later = hold_checks(expected[student] for student in names)
    parallel(
        concurrency,
        names,
        lambda s: phase.run(lambda: fetch(s), lambda r: check(s, r), later=later),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.rush", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--students", "-n", type=int, default=500)
    parser.add_argument("--concurrency", "-c", type=int, default=32)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    add_server_options(parser)
    parser.add_argument(
        "--feedback-graders",
        type=int,
        default=BATCHES_AT_ONCE,
        help="feedback batches sent at once (the plugin's feedback_batches_at_once: %(default)s)",
    )
    parser.add_argument(
        "--collect-at-once",
        type=int,
        default=COLLECT_AT_ONCE,
        help="submissions the one-by-one collect downloads at a time (the plugin's "
        "collect_submissions_at_once: %(default)s)",
    )
    parser.add_argument(
        "--client-files",
        choices=CLIENT_FILES,
        default="memory",
        help="where the students' fetched and collected files go (bench/common.py says why "
        "memory is the default)",
    )
    parser.add_argument("--json", type=Path, help="also write the report here as JSON")
    args = parser.parse_args(argv)
    with (
        client_files(args.client_files, "exchange-rush-") as scratch,
        server_under_test(
            database=args.database,
            storage=args.storage,
            workers=args.workers,
            threads=args.threads,
        ) as target,
    ):
        report = run_rush(
            target,
            students=args.students,
            concurrency=args.concurrency,
            feedback_graders=args.feedback_graders,
            collect_at_once=args.collect_at_once,
            workdir=scratch,
        )
    report.settings.update(
        client_files=args.client_files,
        feedback_graders=args.feedback_graders,
        collect_at_once=args.collect_at_once,
        database=args.database,
        storage=args.storage,
        workers=args.workers,
        threads=args.threads,
    )
    print(report.markdown())
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.as_dict(), indent=2))
    if not report.ok:
        for phase in report.phases:
            for error in phase.errors[:5]:
                print(f"{phase.name}: {error}", file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
