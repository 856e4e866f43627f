"""What a rush run reports: its phases, the machine and settings, totals, and every problem
found; as a dict (``--json``) or as Markdown for ``bench/RESULTS.md``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .common import Phase, table


@dataclass
class Report:
    phases: list[Phase]
    machine: dict[str, Any]
    settings: dict[str, Any]
    totals: dict[str, Any]
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems and not any(p.errors for p in self.phases)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "settings": self.settings,
            "machine": self.machine,
            "phases": [p.summary() for p in self.phases],
            "totals": self.totals,
            "problems": self.problems,
            "errors": {p.name: p.errors[:10] for p in self.phases if p.errors},
        }

    def markdown(self) -> str:
        lines = [
            f"Settings: {json.dumps(self.settings)}",
            f"Machine: {json.dumps(self.machine)}",
            "",
            table([p.summary() for p in self.phases]),
            "",
            f"Totals: {json.dumps(self.totals)}",
        ]
        if self.problems:
            lines += ["", "Problems:", *(f"- {p}" for p in self.problems)]
        lines += ["", "RESULT: " + ("OK" if self.ok else "FAILED")]
        return "\n".join(lines)
