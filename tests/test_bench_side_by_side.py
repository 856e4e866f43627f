"""bench/side_by_side.py: each run of ours judged against its own round's ngshare run, with
issue 13's targets, and a real round of two runs end to end."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("nbgrader_exchange.client")

from bench.side_by_side import judge, markdown, run_rounds

pytestmark = pytest.mark.sqlite_only

PHASES = ("release", "fetch", "submit", "collect", "fetch_feedback")


def report(walls: dict[str, float], *, students: int = 200, p95: int = 400, ok: bool = True):
    """A report as bench.rush and bench.ngshare_rush write it (the keys the judge reads)."""
    return {
        "ok": ok,
        "settings": {"students": students},
        "machine": {"cpu_probe_ms": 44.0},
        "phases": [
            {"phase": name, "wall_s": wall, "p95_ms": p95 if name == "submit" else 10}
            for name, wall in walls.items()
        ],
        "totals": {"wall_s": round(sum(walls.values()), 2)},
    }


NGSHARE = report({name: 30.0 for name in PHASES}, p95=8000)  # 150 s in all


def test_every_target_at_its_bound_is_met_and_just_under_it_is_not():
    at_bound = report({name: 3.75 for name in PHASES}, p95=499)  # 8.0x whole, 8.0x each
    verdict = judge("a", at_bound, NGSHARE)
    assert verdict.whole_ratio == pytest.approx(8.0)
    assert (verdict.phases_met, verdict.whole_met, verdict.p95_met, verdict.all_met) == (
        True,
        True,
        True,
        True,
    )
    # One phase at 2.99x, the whole rush just over 18.75 s, the p95 at 500 ms: each alone
    # misses its target.
    slow_phase = judge("b", report({**{n: 2.0 for n in PHASES}, "fetch": 10.04}), NGSHARE)
    assert slow_phase.lowest[0] == "fetch" and not slow_phase.phases_met
    assert slow_phase.whole_met and slow_phase.p95_met and not slow_phase.all_met
    slow_whole = judge("c", report({name: 3.76 for name in PHASES}), NGSHARE)
    assert slow_whole.phases_met and not slow_whole.whole_met
    slow_p95 = judge("d", report({name: 3.0 for name in PHASES}, p95=500), NGSHARE)
    assert slow_p95.phases_met and slow_p95.whole_met and not slow_p95.p95_met
    # Each ratio's two wall times are kept beside it.
    assert slow_phase.walls_s["fetch"] == (30.0, 10.04)


def test_the_submit_p95_target_follows_the_class_size_and_a_failed_run_meets_nothing():
    at_500 = report({name: 3.0 for name in PHASES}, students=500, p95=999)
    assert judge("a", at_500, NGSHARE).p95_met
    assert not judge("b", {**at_500, "ok": False}, NGSHARE).all_met
    failed = judge("c", {**at_500, "ok": False}, NGSHARE)
    assert not (failed.phases_met or failed.whole_met or failed.p95_met)


def test_the_table_shows_ratios_near_a_target_as_they_are():
    near = judge("L3 pg-s3", report({**{n: 2.0 for n in PHASES}, "fetch": 10.17}), NGSHARE)
    table = markdown([(NGSHARE, [near])])
    assert "fetch 2.95x" in table  # not "3.0x", which would read as met
    row = next(line for line in table.splitlines() if line.startswith("| L3 pg-s3"))
    assert row.count("**no**") == 2  # every phase 3x, and so all
    assert "| (ngshare) | 44.0 | 150.0 |" in table


def test_a_round_runs_each_side_in_its_own_process_and_judges_ours_against_it(tmp_path):
    lines: list[str] = []
    [(ngshare, [verdict])] = run_rounds(
        1,
        students=2,
        concurrency=2,
        threads=2,
        runs=("sqlite", "ngshare"),
        workdir=tmp_path,
        log=lines.append,
    )
    ours = json.loads((tmp_path / "r1-1-sqlite.json").read_text())
    assert ngshare == json.loads((tmp_path / "r1-2-ngshare.json").read_text())
    assert ours["ok"] and ngshare["ok"] and verdict.ok
    assert ours["settings"]["database"] == "sqlite" and ours["settings"]["students"] == 2
    assert set(verdict.ratios) == {p["phase"] for p in ours["phases"]}
    assert verdict.whole_ratio == pytest.approx(
        ngshare["totals"]["wall_s"] / ours["totals"]["wall_s"]
    )
    assert lines[0].startswith("round 1: probe") and len(lines) == 3


def test_a_round_needs_one_ngshare_run(tmp_path):
    with pytest.raises(SystemExit, match="exactly one ngshare run"):
        run_rounds(1, students=2, concurrency=2, threads=2, runs=("sqlite",), workdir=tmp_path)
