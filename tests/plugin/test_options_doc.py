"""docs/plugin.md's table of ``c.Exchange`` options against the plugin: every option the
plugin's ``Exchange`` adds is there, nothing else is, and each plain default is the one the
plugin has."""

from __future__ import annotations

import re
from pathlib import Path

from nbgrader.exchange.abc import Exchange as NbgraderExchange

from nbgrader_exchange.exchange import Exchange

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugin.md"


def documented() -> dict[str, str]:
    text = DOC.read_text()
    table = text.split("### Options (`c.Exchange.<name>`)", 1)[1].split("\n\n", 2)[1]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \|", table, flags=re.MULTILINE)
    assert rows, "the options table of docs/plugin.md was not found"
    return {name: default.strip() for name, default in rows}


def test_every_option_of_the_plugin_is_documented_and_nothing_else():
    ours = set(Exchange.class_traits(config=True)) - set(NbgraderExchange.class_traits(config=True))
    assert set(documented()) == ours


def test_the_documented_plain_defaults_are_the_plugins():
    for name, default in documented().items():
        value = Exchange.class_traits()[name].default_value
        shown = default.split()[0].strip("`")
        if isinstance(value, bool):
            assert shown == str(value), (name, default, value)
        elif isinstance(value, int | float):
            assert float(shown) == value, (name, default, value)
