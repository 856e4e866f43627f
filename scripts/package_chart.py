"""Package the Helm chart into a directory, after checking it carries the project's version.

``python scripts/package_chart.py --version 0.1.0 dist`` writes
``dist/nbgrader-exchange-0.1.0.tgz`` with Helm's own packager (helm-python-sdk, in-process).
`make dist` runs it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import helm_python as helm
import yaml

CHART = Path(__file__).resolve().parent.parent / "charts" / "nbgrader-exchange"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="the project's version (pyproject)")
    parser.add_argument("destination", type=Path)
    args = parser.parse_args(argv)
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for key in ("version", "appVersion"):
        if str(chart[key]) != args.version:
            print(
                f"Chart.yaml's {key} is {chart[key]}, pyproject.toml's version is "
                f"{args.version}: make them equal before packaging.",
                file=sys.stderr,
            )
            return 1
    args.destination.mkdir(parents=True, exist_ok=True)
    print(helm.package(CHART, destination=args.destination))
    return 0


if __name__ == "__main__":
    sys.exit(main())
