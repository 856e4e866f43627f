"""Issue 13's side-by-side comparison in one command: rounds of the deadline rush against
ngshare 0.6.0 on this machine, each run judged against the issue's targets.

    python -m bench.side_by_side --rounds 2 --json bench/out/side_by_side.json

A round is, one after another: PostgreSQL + S3, ngshare, PostgreSQL + S3, SQLite + local,
PostgreSQL + S3 (``--runs`` changes it); each run is its own process (``bench.rush`` or
``bench.ngshare_rush``), so no run inherits another's memory, and each is judged against
its own round's ngshare run, because this machine's speed moves from minute to minute
(every report's ``cpu_probe_ms``). The targets (issue 13): every phase at least 3x faster
than ngshare, the whole rush at least 8x, and the submit p95 under 0.5 s at 200 students
or fewer, under 1 s above. A run that failed (a byte that differs, a lost submission)
meets none.

Set ``TMPDIR`` to the faster temporary directory first (bench/RESULTS.md, "How to run").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import cpu_probe_ms

PHASE_TARGET = 3.0
WHOLE_TARGET = 8.0
RUNS = ("pg-s3", "ngshare", "pg-s3", "sqlite", "pg-s3")
COMMANDS = {
    "pg-s3": ["bench.rush", "--database", "postgres", "--storage", "s3"],
    "sqlite": ["bench.rush", "--database", "sqlite"],
    "ngshare": ["bench.ngshare_rush"],
}


def submit_p95_target_ms(students: int) -> int:
    """The issue's submit p95: under 0.5 s at N=200, under 1 s at N=500."""
    return 500 if students <= 200 else 1000


@dataclass(frozen=True)
class Verdict:
    """One run of ours against its round's ngshare run."""

    name: str
    probe_ms: float | None
    whole_s: float
    whole_ratio: float
    ratios: dict[str, float]  # phase -> ngshare's wall / ours
    submit_p95_ms: int
    ok: bool  # every operation succeeded and every byte matched
    students: int
    # phase -> (ngshare's wall s, ours): what the ratios are made of
    walls_s: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    @property
    def lowest(self) -> tuple[str, float]:
        phase = min(self.ratios, key=lambda name: self.ratios[name])
        return phase, self.ratios[phase]

    @property
    def phases_met(self) -> bool:
        return self.ok and all(ratio >= PHASE_TARGET for ratio in self.ratios.values())

    @property
    def whole_met(self) -> bool:
        return self.ok and self.whole_ratio >= WHOLE_TARGET

    @property
    def p95_met(self) -> bool:
        return self.ok and self.submit_p95_ms < submit_p95_target_ms(self.students)

    @property
    def all_met(self) -> bool:
        return self.phases_met and self.whole_met and self.p95_met


def judge(name: str, ours: dict[str, Any], ngshare: dict[str, Any]) -> Verdict:
    """``ours`` (a ``bench.rush`` report) against ``ngshare`` (a ``bench.ngshare_rush``
    report of the same round): the phases both have, compared by wall time."""
    theirs = {p["phase"]: p["wall_s"] for p in ngshare["phases"]}
    ratios = {
        p["phase"]: theirs[p["phase"]] / max(p["wall_s"], 0.005)
        for p in ours["phases"]
        if p["phase"] in theirs
    }
    submit = next(p for p in ours["phases"] if p["phase"] == "submit")
    whole = ours["totals"]["wall_s"]
    return Verdict(
        name=name,
        probe_ms=ours.get("machine", {}).get("cpu_probe_ms"),
        whole_s=whole,
        whole_ratio=ngshare["totals"]["wall_s"] / max(whole, 0.005),
        ratios=ratios,
        submit_p95_ms=submit["p95_ms"],
        ok=bool(ours.get("ok")) and bool(ngshare.get("ok")),
        students=ours["settings"]["students"],
        walls_s={
            p["phase"]: (theirs[p["phase"]], p["wall_s"])
            for p in ours["phases"]
            if p["phase"] in theirs
        },
    )


def _mark(met: bool) -> str:
    return "yes" if met else "**no**"


def markdown(rounds: list[tuple[dict[str, Any], list[Verdict]]]) -> str:
    """One table row per run of ours, each round's ngshare time beside it."""
    lines = [
        "| run | probe, ms | whole rush, s | vs ngshare | lowest phase | submit p95, ms "
        "| every phase 3x | whole 8x | p95 | all |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ngshare, verdicts in rounds:
        for v in verdicts:
            phase, ratio = v.lowest
            lines.append(
                # Two decimals: 2.95x shown as 3.0x would look like a target met.
                f"| {v.name} | {v.probe_ms} | {v.whole_s} | {v.whole_ratio:.2f}x "
                f"| {phase} {ratio:.2f}x | {v.submit_p95_ms} | {_mark(v.phases_met)} "
                f"| {_mark(v.whole_met)} | {_mark(v.p95_met)} | {_mark(v.all_met)} |"
            )
        lines.append(
            f"| (ngshare) | {ngshare.get('machine', {}).get('cpu_probe_ms')} "
            f"| {ngshare['totals']['wall_s']} | | | | | | | |"
        )
    return "\n".join(lines)


def run_once(kind: str, students: int, concurrency: int, threads: int, out: Path) -> dict[str, Any]:
    """One run in a process of its own; its JSON report (also when it failed)."""
    command = [sys.executable, "-m", *COMMANDS[kind], "-n", str(students)]
    command += ["-c", str(concurrency), "--json", str(out)]
    if kind != "ngshare":
        command += ["--threads", str(threads)]
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    if not out.exists():
        raise SystemExit(
            f"{' '.join(command[2:])} wrote no report (exit status {finished.returncode}):\n"
            + finished.stderr[-2000:]
        )
    return json.loads(out.read_text())


def run_rounds(
    rounds: int,
    *,
    students: int,
    concurrency: int,
    threads: int,
    runs: tuple[str, ...] = RUNS,
    workdir: Path,
    log: Callable[[str], None] = lambda line: print(line, flush=True),
) -> list[tuple[dict[str, Any], list[Verdict]]]:
    """``rounds`` rounds of ``runs``; for each, its ngshare report and the verdicts of the
    others against it."""
    if runs.count("ngshare") != 1 or len(runs) < 2:
        raise SystemExit("a round needs exactly one ngshare run and at least one of ours")
    results = []
    for number in range(1, rounds + 1):
        log(f"round {number}: probe {cpu_probe_ms()} ms")
        reports: list[tuple[str, dict[str, Any]]] = []
        for index, kind in enumerate(runs, 1):
            report = run_once(
                kind, students, concurrency, threads, workdir / f"r{number}-{index}-{kind}.json"
            )
            log(f"  {kind}: {report['totals']['wall_s']} s, ok={report['ok']}")
            reports.append((kind, report))
        ngshare = next(report for kind, report in reports if kind == "ngshare")
        verdicts = [
            judge(f"{number}.{index} {kind}", report, ngshare)
            for index, (kind, report) in enumerate(reports, 1)
            if kind != "ngshare"
        ]
        results.append((ngshare, verdicts))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.side_by_side", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--students", "-n", type=int, default=200)
    parser.add_argument("--concurrency", "-c", type=int, default=16)
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads per worker")
    parser.add_argument(
        "--runs",
        default=",".join(RUNS),
        help="one round's runs in order, of pg-s3, sqlite and ngshare (once): %(default)s",
    )
    parser.add_argument("--json", type=Path, help="also write every run's verdict here")
    # Exit status 1 when a run failed (a byte that differed, a lost submission); a target
    # missed is in the table, not in the status.
    args = parser.parse_args(argv)
    runs = tuple(args.runs.split(","))
    if unknown := set(runs) - set(COMMANDS):
        parser.error(f"unknown runs {sorted(unknown)}: use pg-s3, sqlite, ngshare")
    with tempfile.TemporaryDirectory(prefix="exchange-side-by-side-") as workdir:
        results = run_rounds(
            args.rounds,
            students=args.students,
            concurrency=args.concurrency,
            threads=args.threads,
            runs=runs,
            workdir=Path(workdir),
        )
    print(markdown(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        rows = [
            {
                **dataclasses.asdict(verdict),
                "all_met": verdict.all_met,
                "ngshare_whole_s": ngshare["totals"]["wall_s"],
            }
            for ngshare, verdicts in results
            for verdict in verdicts
        ]
        args.json.write_text(json.dumps(rows, indent=2))
    every_run_ok = all(v.ok for _, verdicts in results for v in verdicts)
    return 0 if every_run_ok else 1


if __name__ == "__main__":
    sys.exit(main())
