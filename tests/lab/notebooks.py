"""The instructor's source notebook for the browser tests: one answer cell, one graded test."""

from __future__ import annotations

from pathlib import Path

import nbformat

ANSWER = """def add(a, b):
    ### BEGIN SOLUTION
    return a + b
    ### END SOLUTION"""

TEST = "assert add(1, 2) == 3"


def _cell(source: str, **nbgrader: object) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"schema_version": 3, "task": False, **nbgrader}
    return cell


def write_source_assignment(course_root: Path, assignment: str, notebook: str) -> Path:
    """Write ``source/<assignment>/<notebook>.ipynb`` under the course directory."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# {assignment}\n\nWrite `add(a, b)`."),
        _cell(ANSWER, grade=False, grade_id="answer", locked=False, solution=True),
        _cell(TEST, grade=True, grade_id="test_add", locked=True, points=1, solution=False),
    ]
    path = course_root / "source" / assignment / f"{notebook}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
