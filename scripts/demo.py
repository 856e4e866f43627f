"""The whole nbgrader cycle over the exchange service, with the real nbgrader CLI.

Starts the service on the embedded default (SQLite and files in a temporary directory),
creates a course with an instructor and two students (each with an API token), and runs
generate_assignment, release_assignment, fetch_assignment, submit, collect, autograde,
generate_feedback, release_feedback, fetch_feedback and list, each person in their own
working directory and HOME. Exits 0 only if each student holds their own feedback.

    make demo            # or: .venv/bin/python scripts/demo.py [--keep]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness.live import LiveServer  # noqa: E402
from tests.plugin.support import COURSE, Person, answer, write_source  # noqa: E402


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def show(result_output: str) -> None:
    for line in result_output.strip().splitlines():
        print(f"    {line}")


def run(person: Person, *args: str) -> str:
    print(f"  [{person.name}] $ nbgrader {' '.join(args)}", flush=True)
    result = person.nbgrader(*args)
    show(result.output)
    return result.output


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the working directories")
    options = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nbgrader-exchange-demo-"))
    step(f"Starting the exchange service (data in {root / 'server'})")
    (root / "server").mkdir()
    server = LiveServer(data_dir=root / "server")
    server.start()
    try:
        print(f"    serving {server.url}")
        step(f"Creating course {COURSE}: instructor ines, students sam and tia, with API tokens")
        tokens = {name: server.create_api_token(name) for name in ("ines", "sam", "tia")}
        server.manage("create_course", COURSE, "--title", "Physics 101", "--instructor", "ines")
        for student in ("sam", "tia"):
            server.manage("add_member", COURSE, student, "--role", "student")
        people = root / "people"
        ines = Person("ines", people, server.url, tokens["ines"], course_id=COURSE)
        sam = Person("sam", people, server.url, tokens["sam"])
        tia = Person("tia", people, server.url, tokens["tia"])
        for person in (ines, sam, tia):
            print(f"    {person.name}: working directory {person.work}, HOME {person.home}")

        step("Instructor: generate and release ps1")
        write_source(ines.work)
        run(ines, "generate_assignment", "ps1")
        run(ines, "release_assignment", "ps1")

        step("Students: list, fetch, answer, submit")
        for student, correct in ((sam, True), (tia, False)):
            run(student, "list")
            run(student, "fetch_assignment", "ps1", "--course", COURSE)
            answer(student.work / "ps1" / "ps1.ipynb", correct=correct)
            run(student, "submit", "ps1", "--course", COURSE)

        step("Instructor: collect, autograde, generate and release feedback")
        run(ines, "list", "--inbound")
        run(ines, "collect", "ps1")
        run(ines, "autograde", "ps1")
        run(ines, "generate_feedback", "ps1")
        run(ines, "release_feedback", "ps1")

        step("Students: fetch feedback and list")
        ok = True
        for student, expected in ((sam, "Score: 1.0 / 1.0"), (tia, "Score: 0.0 / 1.0")):
            run(student, "fetch_feedback", "ps1", "--course", COURSE)
            run(student, "list", "--cached")
            found = sorted((student.work / "ps1" / "feedback").glob("*/ps1.html"))
            if len(found) != 1:
                print(f"  !! {student.name} holds {len(found)} feedback files")
                ok = False
                continue
            text = found[0].read_text()
            mine = expected in text
            print(f"    {student.name}: {found[0].relative_to(student.work)} ({expected}: {mine})")
            ok = ok and mine
        step("Demo " + ("succeeded: each student holds their feedback" if ok else "FAILED"))
        return 0 if ok else 1
    finally:
        server.stop()
        if options.keep:
            print(f"    kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
