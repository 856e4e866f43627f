"""Notebooks for the preview tests and bench/render.py (no Django needed)."""

from __future__ import annotations

import json


def large_notebook(size: int, *, seed: int = 1) -> bytes:
    """A valid notebook of about ``size`` bytes made of many small code cells with outputs:
    the shape that costs nbconvert the most CPU per byte ."""
    import random

    rng = random.Random(seed)
    cells = []
    total = 0
    while total < size:
        value = rng.random()
        cells.append(
            {
                "cell_type": "code",
                "execution_count": len(cells) + 1,
                "id": f"c{len(cells)}",
                "metadata": {},
                "source": f"y = f({value!r})\nprint(y)",
                "outputs": [{"output_type": "stream", "name": "stdout", "text": f"{value}\n"}],
            }
        )
        total += 272  # its share of the JSON below
    notebook = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"language_info": {"name": "python"}},
        "cells": cells,
    }
    return json.dumps(notebook, indent=1).encode()
