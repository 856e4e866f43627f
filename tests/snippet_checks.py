"""What the documentation snippet tests check with: the fenced blocks of README.md and
docs/*.md, the facts the chart renders, and the checkers for Zero to JupyterHub YAML, nbgrader
and JupyterHub Python, and JSON server configuration (see tests/test_doc_snippets.py)."""

from __future__ import annotations

import importlib
import json
import re
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from traitlets.config import Config

from tests.chart.helpers import manifests, one
from tests.harness import REPO

FACTS = yaml.safe_load((REPO / "tests" / "data" / "z2jh-values-facts.yaml").read_text())
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
NOTES_NAME = "charts/nbgrader-exchange/templates/NOTES.txt"
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[a-z]*)\s*$")
PLACEHOLDER_TOKEN = re.compile(r"^<.*token.*>$")


@dataclass
class Snippet:
    where: str  # file:line
    lang: str
    text: str

    def __str__(self) -> str:
        return self.where


def fenced_blocks(path: Path) -> list[Snippet]:
    """The fenced code blocks of a Markdown file (also indented ones, in lists)."""
    blocks: list[Snippet] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        start = FENCE.match(lines[index])
        if not start or not start["lang"]:
            index += 1
            continue
        indent = len(start["indent"])
        body: list[str] = []
        index += 1
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index][indent:])
            index += 1
        blocks.append(
            Snippet(
                f"{path.relative_to(REPO)}:{index - len(body)}",
                start["lang"],
                "\n".join(body) + "\n",
            )
        )
        index += 1
    return blocks


def notes_yaml(text: str) -> str:
    """The Zero to JupyterHub configuration that NOTES.txt prints (from `hub:` on)."""
    lines = text.splitlines()
    start = lines.index("hub:")
    block = []
    for line in lines[start:]:
        if line and not line.startswith((" ", "hub:", "singleuser:")):
            break
        block.append(line)
    return "\n".join(block)


DOC_SNIPPETS = [s for path in DOCS for s in fenced_blocks(path)]


def of(lang: str) -> list[Snippet]:
    return [s for s in DOC_SNIPPETS if s.lang == lang]


# --- What the chart renders: the facts every snippet must agree with ------------------------


@dataclass
class ChartFacts:
    service_name: str
    url: str  # the Service's in-cluster address, as NOTES prints it
    hosts: set[str]  # ALLOWED_HOSTS
    port: int
    client_id: str
    callback: str
    namespace: str
    pod_labels: dict[str, str]

    @property
    def scope(self) -> str:
        return f"access:services!service={self.service_name}"


def chart_facts(values: dict[str, Any] | None = None) -> ChartFacts:
    objects = manifests(values or {})
    service = one(objects, "Service")
    deployment = one(objects, "Deployment")
    env = {
        e["name"]: e.get("value")
        for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    port = service["spec"]["ports"][0]["port"]
    namespace = service["metadata"]["namespace"] if "namespace" in service["metadata"] else "jhub"
    return ChartFacts(
        service_name=env["JUPYTERHUB_SERVICE_NAME"],
        url=f"http://{service['metadata']['name']}.{namespace}.svc.cluster.local:{port}",
        hosts=set(env["ALLOWED_HOSTS"].split(",")),
        port=port,
        client_id=env.get("JUPYTERHUB_CLIENT_ID") or "",
        callback=env.get("JUPYTERHUB_OAUTH_CALLBACK_URL") or "",
        namespace=namespace,
        pod_labels=deployment["spec"]["selector"]["matchLabels"],
    )


CHART = chart_facts()


# --- Zero to JupyterHub keys against the schema facts ----------------------------------------


def z2jh_key_problems(value: Any, node: dict[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    if "type" in node:
        expected = {"string": str, "array": list, "object": dict}[node["type"]]
        if not isinstance(value, expected):
            problems.append(f"{path} must be a {node['type']} in Zero to JupyterHub")
    if "key_pattern" in node and isinstance(value, dict):
        for key in value:
            if not re.match(node["key_pattern"], key):
                problems.append(f"{path}.{key}: Z2JH wants a class name ({node['key_pattern']})")
    if "each" in node and isinstance(value, dict):
        rule = node["each"]
        for key, entry in value.items():
            where = f"{path}.{key}"
            problems += z2jh_key_problems(entry, {"closed": rule["closed"]}, where)
            problems += [f"{where} lacks {k}" for k in rule["required"] if k not in entry]
            if sum(k in entry for k in rule["one_of"]) != 1:
                problems.append(f"{where} needs exactly one of {', '.join(rule['one_of'])}")
    if "closed" in node:
        if not isinstance(value, dict):
            return [*problems, f"{path} must be a mapping"]
        for key, child in value.items():
            where = f"{path}.{key}" if path else key
            if key not in node["closed"]:
                problems.append(f"{where} is not a Zero to JupyterHub setting ({FACTS['chart']})")
            elif key in node.get("children", {}):
                problems += z2jh_key_problems(child, node["children"][key], where)
    elif "children" in node and isinstance(value, dict):
        for key, child in value.items():
            if key in node["children"]:
                problems += z2jh_key_problems(child, node["children"][key], f"{path}.{key}")
    return problems


# --- The things a Z2JH configuration says about the exchange --------------------------------


def z2jh_things(config: dict[str, Any]) -> dict[str, Any]:
    """What the snippet states about the exchange, by thing: the service entry, each role,
    the users' URL, each extra file, the egress rule, the instructor profiles."""
    hub = config.get("hub") or {}
    singleuser = config.get("singleuser") or {}
    things: dict[str, Any] = {}
    for name, entry in (hub.get("services") or {}).items():
        things[f"hub.services.{name}"] = entry
    for name, role in (hub.get("loadRoles") or {}).items():
        things[f"hub.loadRoles.{name}"] = role
    if "config" in hub:
        things["hub.config"] = hub["config"]
    env = singleuser.get("extraEnv") or {}
    if "NBGRADER_EXCHANGE_URL" in env:
        things["singleuser.extraEnv.NBGRADER_EXCHANGE_URL"] = env["NBGRADER_EXCHANGE_URL"]
    for key, entry in (singleuser.get("extraFiles") or {}).items():
        things[f"singleuser.extraFiles.{key}"] = entry
    egress = (singleuser.get("networkPolicy") or {}).get("egress")
    if egress:
        things["singleuser.networkPolicy.egress"] = egress
    return things


def z2jh_meaning_problems(config: dict[str, Any], chart: ChartFacts) -> list[str]:
    """The service entry, scopes, URLs, files and network rule against the chart."""
    problems: list[str] = []
    hub = config.get("hub") or {}
    services = hub.get("services") or {}
    roles = hub.get("loadRoles") or {}
    for name, entry in services.items():
        where = f"hub.services.{name}"
        if name != chart.service_name:
            problems.append(f"{where}: the chart's hub.serviceName is {chart.service_name}")
            continue
        wanted = {
            "url": chart.url,
            "oauth_client_id": chart.client_id,
            "oauth_redirect_uri": chart.callback,
        }
        for key, value in wanted.items():
            if entry.get(key) != value:
                problems.append(f"{where}.{key} is {entry.get(key)!r}; the chart has {value!r}")
        canonical = FACTS["service_token"]["canonical"]
        for key in FACTS["service_token"]["value_keys"]:
            if key in entry and key != canonical:
                problems.append(
                    f"{where}.{key}: write the token as {canonical}, the one spelling the guides "
                    f"and NOTES use (Z2JH copies it into its Secret key "
                    f"{FACTS['service_token']['secret_key'].format(name=name)})"
                )
        if canonical in entry and not PLACEHOLDER_TOKEN.match(str(entry[canonical])):
            problems.append(f"{where}.{canonical} holds a value, not a <placeholder>")
    if services:
        user = (roles.get("user") or {}).get("scopes") or []
        server = (roles.get("server") or {}).get("scopes") or []
        if not {"self", chart.scope} <= set(user):
            problems.append(f"hub.loadRoles.user.scopes must hold self and {chart.scope}")
        if not {"users:activity!user", "access:servers!server", chart.scope} <= set(server):
            problems.append(
                "hub.loadRoles.server.scopes must hold users:activity!user, "
                f"access:servers!server and {chart.scope} (the users' server tokens)"
            )
    spawner = ((hub.get("config") or {}).get("Spawner")) or {}
    if "server_token_scopes" in spawner:
        problems.append(
            "hub.config.Spawner.server_token_scopes: the guides give server tokens the scope "
            "through the server role (hub.loadRoles.server), one form everywhere"
        )
    singleuser = config.get("singleuser") or {}
    url = (singleuser.get("extraEnv") or {}).get("NBGRADER_EXCHANGE_URL")
    if url is not None and url != chart.url + "/":
        problems.append(f"singleuser NBGRADER_EXCHANGE_URL is {url!r}; the chart has {chart.url}/")
    for key, entry in (singleuser.get("extraFiles") or {}).items():
        problems += [f"singleuser.extraFiles.{key}: {p}" for p in extra_file_problems(entry)]
    for rule in (singleuser.get("networkPolicy") or {}).get("egress") or []:
        for peer in rule.get("to", []):
            labels = (peer.get("podSelector") or {}).get("matchLabels")
            if labels is not None and labels != chart.pod_labels:
                problems.append(f"egress podSelector {labels} is not the pods' {chart.pod_labels}")
            ns = ((peer.get("namespaceSelector") or {}).get("matchLabels") or {}).get(
                "kubernetes.io/metadata.name"
            )
            if ns is not None and ns != chart.namespace:
                problems.append(f"egress namespace {ns} is not {chart.namespace}")
        ports = [p.get("port") for p in rule.get("ports", [])]
        if ports and ports != [chart.port]:
            problems.append(f"egress ports {ports}: the exchange listens on {chart.port}")
    for name, code in (hub.get("extraConfig") or {}).items():
        problems += [f"hub.extraConfig.{name}: {p}" for p in hub_python_problems(code)]
    return problems


def extra_file_problems(entry: dict[str, Any]) -> list[str]:
    mount = entry.get("mountPath", "")
    if mount.endswith("nbgrader_config.py"):
        return nbgrader_config_problems(entry.get("stringData", ""))
    if mount.endswith(".json"):
        return server_config_problems(
            entry.get("data") or json.loads(entry.get("stringData", "{}"))
        )
    return []


# --- Python and JSON --------------------------------------------------------------------------


def run_config(code: str, **namespace: Any) -> Config:
    """Execute a config file as traitlets' loader does: `c` and `get_config` predefined."""
    c = Config()
    exec(compile(code, "<snippet>", "exec"), {"c": c, "get_config": lambda: c, **namespace})
    return c


def nbgrader_config_problems(code: str) -> list[str]:
    """Executed, then read by nbgrader's ExchangeFactory and the plugin's Exchange."""
    from nbgrader.exchange import ExchangeFactory

    import nbgrader_exchange
    from nbgrader_exchange.exchange import Exchange

    try:
        c = run_config(code)
    except Exception as exc:  # whatever it is, it is the snippet's problem
        return [f"does not run: {exc!r}"]
    problems = []
    if "configure(" in code:
        factory = ExchangeFactory(config=c)
        for role, path in nbgrader_exchange.ROLES.items():
            cls = getattr(factory, role)
            if f"{cls.__module__}.{cls.__name__}" != path:
                problems.append(f"ExchangeFactory.{role} is {cls}, not the plugin's {path}")
        url = Exchange(config=c).url
        if url:
            parsed = urlparse(url)
            in_cluster = parsed.hostname and (
                parsed.hostname.endswith(".svc")
                or ".svc." in parsed.hostname
                or parsed.hostname == CHART.service_name
            )
            if in_cluster:
                if parsed.hostname not in CHART.hosts:
                    problems.append(f"{url}: the chart's ALLOWED_HOSTS lack {parsed.hostname}")
                if parsed.port != CHART.port:
                    problems.append(f"{url}: the chart's Service listens on {CHART.port}")
    return problems


def server_config_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    for name, enabled in ((config.get("ServerApp") or {}).get("jpserver_extensions") or {}).items():
        module = importlib.import_module(name)
        if enabled and not hasattr(module, "_jupyter_server_extension_points"):
            problems.append(f"{name} is not a Jupyter server extension")
    return problems


class _Group:
    def __init__(self, name: str) -> None:
        self.name = name


def _spawner(*groups: str) -> Any:
    return types.SimpleNamespace(
        user=types.SimpleNamespace(name="u", groups=[_Group(g) for g in groups])
    )


def _run_coroutine(coroutine: Any) -> Any:
    """Run a coroutine on a loop of its own, in a thread: Playwright's sync API (the browser
    tests earlier in the session) leaves an event loop running in the main thread."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def hub_python_problems(code: str) -> list[str]:
    """A jupyterhub_config.py (or hub.extraConfig) snippet: run it and read what it sets."""
    # The one-machine recipe (docs/one-machine.md) reads the service's env file: the page's
    # own, written to a temporary file (tests/test_one_machine.py runs the whole recipe).
    from tests.harness.one_machine import DOC, doc_files

    env_path = "/etc/nbgrader-exchange/env"
    with tempfile.TemporaryDirectory() as scratch:
        env_file = Path(scratch) / "env"
        env_file.write_text(doc_files(DOC.read_text())[env_path])
        c = run_config(code.replace(env_path, str(env_file)))
    problems: list[str] = []
    for service in c.JupyterHub.get("services", []):
        name = service["name"]
        bind = " ".join(service.get("command", []))
        port = str(urlparse(service["url"]).port)
        if service.get("command") and f":{port}" not in bind:
            problems.append(f"service {name}: url {service['url']} but the command binds {bind}")
        scope = f"access:services!service={name}"
        roles = {role["name"]: role for role in c.JupyterHub.get("load_roles", [])}
        if scope not in roles.get("user", {}).get("scopes", []):
            problems.append(f"service {name}: the user role lacks {scope}")
        if scope not in roles.get("server", {}).get("scopes", []):
            problems.append(f"service {name}: the server role lacks {scope} (servers' tokens)")
    if "server_token_scopes" in c.Spawner:
        problems.append("c.Spawner.server_token_scopes: use the server role, one form everywhere")
    profiles = c.KubeSpawner.get("profile_list")
    if callable(profiles):
        keys = set(FACTS["kubespawner_profile_keys"])
        student = _run_coroutine(profiles(_spawner("nbgrader-phys101")))
        teacher = _run_coroutine(profiles(_spawner("nbgrader-chem1", "formgrade-phys101")))
        for profile in student + teacher:
            if set(profile) - keys:
                problems.append(f"profile keys {set(profile) - keys} are not KubeSpawner's")
        if len(teacher) <= len(student) or any("Instructor" in p["display_name"] for p in student):
            problems.append("the instructor profile must be offered to instructors only")
    return problems
