"""Every configuration snippet in README.md, docs/*.md and the chart's NOTES.txt is checked.

- YAML for Zero to JupyterHub: its keys against the facts written down from Z2JH's values
  schema (tests/data/z2jh-values-facts.yaml); the service entry, roles, users' environment,
  files and network rule against this chart's rendered objects (service name, URL, OAuth
  client, callback, scopes, pod labels, port); each of those things stated once: a guide
  that shows one shows exactly what NOTES.txt prints.
- YAML for this chart: rendered with the chart (schema and every refusal apply).
- Python for nbgrader (`nbgrader_config.py`): executed, then nbgrader's own ExchangeFactory
  and the plugin's Exchange read the result.
- Python for JupyterHub (`jupyterhub_config.py`, a Z2JH `hub.extraConfig`): executed; the
  services, roles and profile lists it makes are checked.
- JSON server configuration: every server extension named is importable as one.
"""

from __future__ import annotations

import json
import re

import helm_python as helm
import pytest
import yaml

from tests.chart.helpers import manifests, notes
from tests.snippet_checks import (
    CHART,
    FACTS,
    Snippet,
    chart_facts,
    hub_python_problems,
    nbgrader_config_problems,
    notes_yaml,
    of,
    server_config_problems,
    z2jh_key_problems,
    z2jh_meaning_problems,
    z2jh_things,
)

# --- The tests ------------------------------------------------------------------------------


def classify_yaml(snippet: Snippet) -> str:
    data = yaml.safe_load(snippet.text)
    if not isinstance(data, dict):
        return "other"
    if {"apiVersion", "kind"} <= set(data):
        return "kubernetes"
    try:
        manifests(data)
    except helm.HelmError:  # not values of this chart
        return "z2jh" if set(data) <= set(FACTS["values"]["closed"]) else "other"
    return "chart"


YAML = of("yaml")


def test_the_docs_have_the_snippets_this_test_checks():
    kinds = [classify_yaml(s) for s in YAML]
    assert kinds.count("z2jh") >= 3 and kinds.count("chart") >= 3
    assert "other" not in kinds, [str(s) for s, k in zip(YAML, kinds, strict=True) if k == "other"]
    assert len(of("python")) >= 6


@pytest.mark.parametrize("snippet", YAML, ids=str)
def test_yaml_snippet(snippet):
    kind = classify_yaml(snippet)
    data = yaml.safe_load(snippet.text)
    if kind == "chart":
        return  # rendered by classify_yaml: schema and every refusal passed
    problems = z2jh_key_problems(data, FACTS["values"], "")
    problems += z2jh_meaning_problems(data, CHART)
    assert not problems, f"{snippet}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {
            "hub": {
                "apiTokenSecret": {"name": "hub", "key": "hub.services.nbgrader-exchange.apiToken"}
            }
        },
        {"hub": {"serviceName": "grading", "oauthLogin": False}},
        {
            "storage": {"type": "s3", "s3": {"bucket": "b", "endpointUrl": "http://minio:9000"}},
            "database": {"type": "postgresql", "url": "postgresql://h/db"},
        },
    ],
    ids=["default", "z2jh-token", "renamed", "s3"],
)
def test_notes_print_a_z2jh_configuration_that_matches_the_chart(values):
    text = notes(values)
    config = yaml.safe_load(notes_yaml(text))
    chart = chart_facts(values)
    problems = z2jh_key_problems(config, FACTS["values"], "")
    problems += z2jh_meaning_problems(config, chart)
    if values.get("hub", {}).get("oauthLogin") is False:
        problems = [p for p in problems if "oauth_" not in p]
    assert not problems, "\n".join(problems)
    entry = config["hub"]["services"][chart.service_name]
    assert ("apiToken" in entry) == ("apiTokenSecret" not in values.get("hub", {}))
    # The Lab extension that turns exchange failures into sentences is part of the recipe.
    files = config["singleuser"]["extraFiles"]
    assert any(
        "nbgrader_exchange.lab" in json.dumps(entry.get("data", {})) for entry in files.values()
    )


def test_each_z2jh_thing_is_stated_once_as_notes_prints_it():
    canonical = z2jh_things(yaml.safe_load(notes_yaml(notes({}))))
    problems = []
    for snippet in YAML:
        if classify_yaml(snippet) != "z2jh":
            continue
        for thing, value in z2jh_things(yaml.safe_load(snippet.text)).items():
            if thing in canonical and value != canonical[thing]:
                problems.append(
                    f"{snippet}: {thing} differs from what NOTES.txt prints:\n"
                    f"    doc:   {json.dumps(value)}\n    NOTES: {json.dumps(canonical[thing])}"
                )
    assert not problems, "\n".join(problems)


PYTHON = of("python")


@pytest.mark.parametrize("snippet", PYTHON, ids=str)
def test_python_snippet(snippet):
    hub_side = re.search(r"c\.(JupyterHub|Spawner|KubeSpawner)\b", snippet.text)
    problems = (
        hub_python_problems(snippet.text) if hub_side else nbgrader_config_problems(snippet.text)
    )
    assert not problems, f"{snippet}:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize("snippet", of("json"), ids=str)
def test_json_snippet(snippet):
    assert not server_config_problems(json.loads(snippet.text))


# --- The checks themselves catch what they are for --------------------------------------------


def test_the_checks_refuse_what_broke_installs():
    good = yaml.safe_load(notes_yaml(notes({})))
    assert not z2jh_meaning_problems(good, CHART)

    def broken(change) -> list[str]:
        config = yaml.safe_load(notes_yaml(notes({})))
        change(config)
        return z2jh_key_problems(config, FACTS["values"], "") + z2jh_meaning_problems(config, CHART)

    entry = "nbgrader-exchange"

    def api_token(c):
        c["hub"]["services"][entry]["api_token"] = c["hub"]["services"][entry].pop("apiToken")

    assert any("write the token as apiToken" in p for p in broken(api_token))
    assert any(
        "hub.services.nbgrader-exchange.oauth_redirect_uri" in p
        for p in broken(lambda c: c["hub"]["services"][entry].update(oauth_redirect_uri="/x"))
    )
    assert any(
        "server_token_scopes" in p
        for p in broken(lambda c: c["hub"].update(config={"Spawner": {"server_token_scopes": []}}))
    )
    assert any(
        "hub.loadRoles.server" in p for p in broken(lambda c: c["hub"]["loadRoles"].pop("server"))
    )
    assert any(
        "hub.servcies is not a Zero to JupyterHub setting" in p
        for p in broken(lambda c: c["hub"].update(servcies={}))
    )
    assert any(
        "needs exactly one of" in p
        for p in broken(
            lambda c: c["singleuser"]["extraFiles"].update(
                x={"mountPath": "/a", "data": {}, "stringData": ""}
            )
        )
    )
    assert any(
        "egress ports" in p
        for p in broken(
            lambda c: c["singleuser"]["networkPolicy"]["egress"][0].update(ports=[{"port": 80}])
        )
    )
    assert any(
        "the chart's Service listens on 8000" in p
        for p in nbgrader_config_problems(
            "from nbgrader_exchange import configure\n"
            "configure(c, url='http://nbgrader-exchange.jhub.svc:9999')"
        )
    )
    assert any(
        "ALLOWED_HOSTS" in p
        for p in nbgrader_config_problems(
            "from nbgrader_exchange import configure\nconfigure(c, url='http://other.jhub.svc:8000')"
        )
    )
    everyone = (
        "async def profiles(spawner):\n"
        "    return [{'display_name': 'Student'}, {'display_name': 'Instructor'}]\n"
        "c.KubeSpawner.profile_list = profiles\n"
    )
    assert any("instructors only" in p for p in hub_python_problems(everyone))
    assert any(
        "not KubeSpawner's" in p
        for p in hub_python_problems(
            everyone.replace("'Student'}", "'Student', 'allowed_groups': []}")
        )
    )
    assert nbgrader_config_problems("raise RuntimeError('typo')")[0].startswith("does not run")
