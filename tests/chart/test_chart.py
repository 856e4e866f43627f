"""The Helm chart: lints, renders valid Kubernetes objects for every values file, refuses
combinations that cannot work, and maps values onto exactly the variables settings.py reads."""

from __future__ import annotations

import re
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from django.urls import resolve

from .helpers import (
    CHART,
    NAMESPACE,
    RELEASE,
    VALUES_DIR,
    by_kind,
    manifests,
    notes,
    one,
    pod_containers,
    render,
    settings_env_names,
    values_file,
)

VALUES_FILES = sorted(path.stem for path in VALUES_DIR.glob("*.yaml"))
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas
# kubernetes-validate ships.
KUBERNETES_VERSIONS = ["1.25.0", kubernetes_validate.latest_version()]

# Variables settings.py reads that the chart deliberately leaves alone, and why.
NOT_FROM_THE_CHART = {
    "DEBUG": "never on in a cluster",
    "EXCHANGE_FILES_DIR": "local files live under EXCHANGE_DATA_DIR (/data/files)",
    "EXCHANGE_UPLOAD_TEMP_DIR": "uploads spool to /tmp, the emptyDir sized by tmpSizeLimit",
    "EXCHANGE_URL_PREFIX": "follows JUPYTERHUB_SERVICE_PREFIX, which the chart sets",
    "JUPYTERHUB_HOST": "the chart sets EXCHANGE_HUB_URL from hub.publicUrl instead",
    "SECRET_KEY_FILE": "SECRET_KEY comes from the Secret as a variable",
    "JUPYTERHUB_API_TOKEN_FILE": "JUPYTERHUB_API_TOKEN comes from the Secret as a variable",
    "EXCHANGE_S3_ACCESS_KEY_ID_FILE": "the S3 keys come from the Secret as variables",
    "EXCHANGE_S3_SECRET_ACCESS_KEY_FILE": "the S3 keys come from the Secret as variables",
}

REPLICATED = "replicated-postgresql-s3"


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


def render_error(values: dict[str, Any]) -> str:
    with pytest.raises(helm.HelmError) as caught:
        render(values)
    return str(caught.value)


# --- Lint and schema validation for every values file --------------------------------


@pytest.mark.parametrize("name", VALUES_FILES)
def test_chart_lints_without_warnings(name):
    report = helm.lint(CHART, values_file(name), strict=True, namespace=NAMESPACE)
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("name", VALUES_FILES)
def test_every_rendered_object_is_valid_kubernetes(name, version):
    objects = manifests(values_file(name))
    assert {"Deployment", "Service"} <= {o["kind"] for o in objects}
    for obj in objects:
        # strict: an unknown or misspelt field fails instead of being silently dropped.
        kubernetes_validate.validate(obj, version, strict=True)


def test_values_files_cover_the_chart():
    """Every template renders something in at least one values file, so all are validated."""
    rendered_kinds = set()
    for name in VALUES_FILES:
        rendered_kinds |= {o["kind"] for o in manifests(values_file(name))}
    assert rendered_kinds >= {
        "Deployment",
        "Service",
        "Secret",
        "ServiceAccount",
        "PersistentVolumeClaim",
        "Job",
        "Ingress",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "CronJob",
    }


# --- Values that cannot work fail the render with a sentence -------------------------


def test_several_replicas_with_sqlite_fail_with_the_reason():
    message = render_error({"replicas": 2})
    assert "replicas=2 needs database.type=postgresql" in message
    assert "SQLite is one file on one pod's volume" in message


def test_several_replicas_with_local_files_fail_with_the_reason():
    message = render_error(
        {"replicas": 2, "database": {"type": "postgresql", "url": "postgresql://h/db"}}
    )
    assert "replicas=2 needs storage.type=s3" in message


@pytest.mark.parametrize(
    ("values", "sentence"),
    [
        ({"database": {"type": "postgresql"}}, "database.type=postgresql needs database.url"),
        ({"database": {"type": "mysql"}}, "at '/database/type': value must be one of"),
        ({"storage": {"type": "s3"}}, "storage.type=s3 needs storage.s3.bucket"),
        ({"storage": {"type": "nfs"}}, "at '/storage/type': value must be one of"),
        (
            {"storage": {"type": "s3", "s3": {"bucket": "b", "accessKeyId": "AK"}}},
            "accessKeyId and storage.s3.secretAccessKey go together",
        ),
        ({"replicas": 0}, "at '/replicas': minimum: got 0, want 1"),
        # values.schema.json: a misspelt key fails instead of being silently ignored.
        ({"replica": 3}, "additional properties 'replica' not allowed"),
        ({"storage": {"s3": {"bucketName": "b"}}}, "additional properties 'bucketName'"),
        ({"limits": {"maxFileSize": "1G"}}, "'1G' does not match pattern"),
        ({"gunicorn": {"workers": "2"}}, "at '/gunicorn/workers': got string, want integer"),
        ({"cache": {"url": "memcached://m"}}, "at '/cache/url'"),
        (
            {"extraEnv": [{"name": "LOG_LEVEL", "value": "DEBUG"}]},
            "extraEnv sets LOG_LEVEL, which the chart sets from its values",
        ),
        (
            {"existingSecret": "mine", "database": {"type": "postgresql", "url": "postgresql://x"}},
            "put DATABASE_URL into that Secret",
        ),
        ({"existingSecret": "mine", "secretKey": "k"}, "put SECRET_KEY into that Secret"),
        ({"hub": {"apiTokenSecret": {"name": "hub"}}}, "hub.apiTokenSecret needs both"),
        ({"hub": {"serviceName": "no spaces"}}, 'hub.serviceName="no spaces"'),
        ({"hub": {"publicUrl": "hub.example.edu"}}, "expected an absolute URL"),
        ({"ingress": {"enabled": True}}, "ingress.enabled=true needs at least one"),
    ],
)
def test_impossible_values_fail_with_a_sentence(values, sentence):
    assert sentence in render_error(values)


# --- The environment matches settings.py ----------------------------------------------


@pytest.mark.parametrize("name", VALUES_FILES)
def test_chart_sets_only_variables_settings_reads(name):
    read = settings_env_names()
    for workload in by_kind(manifests(values_file(name)), "Deployment") + by_kind(
        manifests(values_file(name)), "Job"
    ):
        for container in pod_containers(workload):
            unknown = set(env_of(container)) - read
            assert not unknown, (
                f"{workload['kind']}/{container['name']} sets {sorted(unknown)}, which "
                "exchange_site/settings.py does not read"
            )


def test_every_variable_settings_reads_is_mapped_by_the_chart():
    """A new setting in settings.py must get a chart value (or a reason here not to)."""
    mapped: set[str] = set()
    for name in VALUES_FILES:
        for container in pod_containers(one(manifests(values_file(name)), "Deployment")):
            mapped |= set(env_of(container))
    missing = settings_env_names() - mapped - set(NOT_FROM_THE_CHART)
    assert not missing, (
        f"exchange_site/settings.py reads {sorted(missing)} but no chart value sets it: map it "
        "in charts/nbgrader-exchange (values.yaml + templates/_helpers.tpl) or list it in "
        "NOT_FROM_THE_CHART with the reason"
    )
    assert set(NOT_FROM_THE_CHART) <= settings_env_names(), "stale NOT_FROM_THE_CHART entry"


def test_replicated_values_reach_the_server_environment():
    server = one(manifests(values_file(REPLICATED)), "Deployment")["spec"]["template"]["spec"][
        "containers"
    ][0]
    env = env_of(server)
    plain = {name: item["value"] for name, item in env.items() if "value" in item}
    assert plain["EXCHANGE_STORAGE"] == "s3"
    assert plain["EXCHANGE_S3_BUCKET"] == "nbgrader-exchange"
    assert plain["EXCHANGE_S3_ENDPOINT_URL"] == "https://s3.example.edu"
    assert plain["EXCHANGE_S3_REGION"] == "eu-west-1"
    assert plain["EXCHANGE_S3_ADDRESSING_STYLE"] == "path"
    assert plain["EXCHANGE_CACHE_URL"] == "db://"
    assert plain["EXCHANGE_MAX_FILE_SIZE"] == "536870912"
    assert plain["EXCHANGE_MAX_BUNDLE_FILES"] == "5000"
    assert plain["EXCHANGE_SIGNED_URL_SECONDS"] == "120"
    assert plain["EXCHANGE_RENDER_MAX_SIZE"] == "8388608"
    assert plain["EXCHANGE_RENDER_SECONDS"] == "90"
    assert plain["EXCHANGE_RENDER_MEMORY"] == "805306368"
    assert plain["EXCHANGE_RENDER_CONCURRENCY"] == "1"
    assert plain["EXCHANGE_HUB_TOKEN_CACHE_SECONDS"] == "30"
    assert plain["EXCHANGE_UPLOADS_PER_MINUTE"] == "6"
    assert plain["EXCHANGE_SUBMISSION_QUOTA"] == "1073741824"
    assert plain["EXCHANGE_SESSION_SECONDS"] == "3600"
    assert plain["EXCHANGE_API_TOKEN_DAYS"] == "30"
    assert plain["EXCHANGE_API_TOKEN_CACHE_SECONDS"] == "5"
    # hub.publicUrl is https://: Secure cookies and HSTS.
    assert plain["EXCHANGE_HTTPS"] == "true"
    assert plain["EXCHANGE_HSTS_SECONDS"] == "63072000"
    assert plain["EXCHANGE_HUB_ADMINS_ARE_STAFF"] == "true"
    assert plain["JUPYTERHUB_API_URL"] == "http://hub:8081/hub/api"
    assert "hub.example.edu" in plain["ALLOWED_HOSTS"].split(",")
    assert f"{RELEASE}.{NAMESPACE}.svc.cluster.local" in plain["ALLOWED_HOSTS"].split(",")
    assert plain["CSRF_TRUSTED_ORIGINS"] == "https://hub.example.edu"
    # The environment JupyterHub gives the services it manages, for the hub's proxy and OAuth.
    assert plain["JUPYTERHUB_SERVICE_NAME"] == "nbgrader-exchange"
    assert plain["JUPYTERHUB_SERVICE_PREFIX"] == "/services/nbgrader-exchange/"
    assert plain["JUPYTERHUB_BASE_URL"] == "/"
    assert plain["JUPYTERHUB_CLIENT_ID"] == "service-nbgrader-exchange"
    assert plain["JUPYTERHUB_OAUTH_CALLBACK_URL"] == "/services/nbgrader-exchange/oauth_callback"
    assert plain["EXCHANGE_HUB_URL"] == "https://hub.example.edu/"
    assert plain["EXCHANGE_HUB_REQUIRE_ACCESS_SCOPE"] == "true"
    for secret_name in [
        "SECRET_KEY",
        "DATABASE_URL",
        "JUPYTERHUB_API_TOKEN",
        "EXCHANGE_S3_ACCESS_KEY_ID",
        "EXCHANGE_S3_SECRET_ACCESS_KEY",
    ]:
        ref = env[secret_name]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": RELEASE, "key": secret_name}
    command = server["command"]
    assert command[:2] == ["gunicorn", "exchange_site.wsgi"]
    assert {"--workers=4", "--threads=8", "--timeout=300"} <= set(command)


def test_secret_holds_the_values_given_and_generates_the_rest():
    objects = manifests(values_file(REPLICATED))
    secret = next(s for s in by_kind(objects, "Secret") if s["metadata"]["name"] == RELEASE)
    data = {key: _b64(value) for key, value in secret["data"].items()}
    assert data["DATABASE_URL"] == "postgresql://exchange:s3cret@db.example.edu:5432/exchange"
    assert data["EXCHANGE_S3_ACCESS_KEY_ID"] == "AKIAEXAMPLE"
    assert len(data["SECRET_KEY"]) == 64
    assert re.fullmatch(r"[a-z0-9]{64}", data["JUPYTERHUB_API_TOKEN"])
    # Given as values, they are used as they are.
    given = manifests({"secretKey": "k" * 50, "hub": {"apiToken": "t0ken"}})
    data = {k: _b64(v) for k, v in one(given, "Secret")["data"].items()}
    assert data == {"SECRET_KEY": "k" * 50, "JUPYTERHUB_API_TOKEN": "t0ken"}


def test_extra_env_reaches_the_libraries():
    extra = {"name": "AWS_REQUEST_CHECKSUM_CALCULATION", "value": "when_required"}
    objects = manifests({**values_file(REPLICATED), "extraEnv": [extra]})
    for workload in by_kind(objects, "Deployment") + by_kind(objects, "Job"):
        for container in pod_containers(workload):
            assert env_of(container)[extra["name"]] == extra


def test_existing_secret_is_read_and_no_secret_is_rendered():
    objects = manifests(values_file("existing-secret"))
    assert by_kind(objects, "Secret") == []
    for workload in by_kind(objects, "Deployment") + by_kind(objects, "Job"):
        for container in pod_containers(workload):
            for name, item in env_of(container).items():
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref is None:
                    continue
                if name == "JUPYTERHUB_API_TOKEN":
                    assert ref == {"name": "hub", "key": "hub.services.nbgrader-exchange.apiToken"}
                else:
                    assert ref["name"] == "exchange-secrets" and ref["key"] == name
    deployment = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert deployment["serviceAccountName"] == "exchange"
    assert by_kind(objects, "ServiceAccount") == []
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "exchange-files"}} in (
        deployment["volumes"]
    )


def test_s3_keys_from_an_existing_secret_are_optional():
    """Without keys, the S3 client falls back to the pod's cloud identity."""
    server = one(manifests(values_file("s3-existing-secret")), "Deployment")["spec"]["template"][
        "spec"
    ]["containers"][0]
    ref = env_of(server)["EXCHANGE_S3_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "exchange-secrets", "key": "EXCHANGE_S3_ACCESS_KEY_ID", "optional": True}


# --- Migrations: once per install/upgrade, never per replica -----------------------------


def test_migrations_run_in_a_pre_install_and_pre_upgrade_job_with_postgresql():
    objects = manifests(values_file(REPLICATED))
    job = one(objects, "Job")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert "python manage.py migrate --noinput" in container["command"][-1]
    assert "createcachetable" in container["command"][-1]
    # Before a first install the release's Secret does not exist: the Job reads a hook Secret
    # created just before it, holding only what migrations need.
    hook_secret = next(
        s
        for s in by_kind(objects, "Secret")
        if "helm.sh/hook" in s["metadata"].get("annotations", {})
    )
    assert int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"]) < int(
        annotations["helm.sh/hook-weight"]
    )
    assert set(hook_secret["data"]) == {"SECRET_KEY", "DATABASE_URL"}
    refs = {
        item["valueFrom"]["secretKeyRef"]["name"]
        for item in container["env"]
        if "valueFrom" in item
    }
    assert refs == {hook_secret["metadata"]["name"]}
    # The server pods do not migrate, so replicas can roll one by one.
    deployment = one(objects, "Deployment")
    assert "initContainers" not in deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert deployment["spec"]["replicas"] == 3
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    assert by_kind(objects, "PersistentVolumeClaim") == []


def test_sqlite_migrates_in_the_single_pod_and_recreates_it_on_upgrade():
    objects = manifests({})
    assert by_kind(objects, "Job") == []
    deployment = one(objects, "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["initContainers"]] == ["migrate"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert by_kind(objects, "PodDisruptionBudget") == []
    claim = one(objects, "PersistentVolumeClaim")
    assert {"name": "data", "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}} in (
        spec["volumes"]
    )
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    init_env = env_of(spec["initContainers"][0])
    assert init_env["SECRET_KEY"]["valueFrom"]["secretKeyRef"]["name"] == RELEASE


# --- Pods: probes, security, Zero to JupyterHub labels -------------------------------------


@pytest.mark.parametrize("name", VALUES_FILES)
def test_pods_run_non_root_on_a_read_only_root_with_tmp_and_data_volumes(name):
    for workload in by_kind(manifests(values_file(name)), "Deployment") + by_kind(
        manifests(values_file(name)), "Job"
    ):
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        volumes = {v["name"] for v in pod["volumes"]}
        for container in pod_containers(workload):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts == {"/tmp": "tmp", "/data": "data"}
            assert volumes >= set(mounts.values())
            assert env_of(container)["EXCHANGE_DATA_DIR"]["value"] == "/data"


def test_probes_ask_real_health_views_with_an_allowed_host():
    server = one(manifests({}), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    allowed = env_of(server)["ALLOWED_HOSTS"]["value"].split(",")
    paths = {}
    for probe in ["startupProbe", "livenessProbe", "readinessProbe"]:
        get = server[probe]["httpGet"]
        paths[probe] = get["path"]
        assert get["port"] == "http"
        host = {h["name"]: h["value"] for h in get["httpHeaders"]}["Host"]
        assert host in allowed
    assert paths == {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    assert resolve("/healthz").url_name == "healthz"
    assert resolve("/readyz").url_name == "readyz"


def test_pods_carry_the_zero_to_jupyterhub_hub_access_label():
    for name in VALUES_FILES:
        labels = one(manifests(values_file(name)), "Deployment")["spec"]["template"]["metadata"][
            "labels"
        ]
        assert labels["hub.jupyter.org/network-access-hub"] == "true"


def test_scheduling_values_reach_the_pods():
    pod = one(manifests(values_file(REPLICATED)), "Deployment")["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"hub.jupyter.org/node-purpose": "core"}
    assert pod["tolerations"][0]["key"] == "hub.jupyter.org/dedicated"
    # Several replicas and no affinity given: spread over nodes.
    assert "podAntiAffinity" in pod["affinity"]
    pod = one(manifests(values_file("ingress")), "Deployment")["spec"]["template"]["spec"]
    assert "nodeAffinity" in pod["affinity"]
    assert (
        one(manifests(values_file("ingress")), "PersistentVolumeClaim")["spec"]["storageClassName"]
        == "fast-ssd"
    )


def test_ingress_hosts_are_allowed_and_trusted():
    objects = manifests(values_file("ingress"))
    ingress = one(objects, "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "exchange.example.edu"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": RELEASE, "port": {"name": "http"}}
    env = env_of(one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0])
    hosts = env["ALLOWED_HOSTS"]["value"].split(",")
    assert {"exchange.example.edu", "exchange-internal.example.edu"} <= set(hosts)
    assert env["CSRF_TRUSTED_ORIGINS"]["value"].split(",") == [
        "https://exchange.example.edu",
        "https://exchange-internal.example.edu",
    ]


def test_network_policy_admits_the_hub_its_proxy_and_users_servers():
    policy = one(manifests(values_file(REPLICATED)), "NetworkPolicy")
    peers = policy["spec"]["ingress"][0]["from"]
    components = peers[0]["podSelector"]["matchExpressions"][0]["values"]
    assert {"hub", "proxy", "singleuser-server"} <= set(components)
    assert peers[1]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }


# --- NOTES.txt: what to paste into the Zero to JupyterHub config --------------------------


def _pasteable_snippet(text: str) -> dict[str, Any]:
    start = text.index("\nhub:\n")
    end = text.index("\nThe users' image")
    return yaml.safe_load(text[start:end])


def test_notes_print_a_valid_zero_to_jupyterhub_config_snippet():
    snippet = _pasteable_snippet(notes({}))
    url = f"http://{RELEASE}.{NAMESPACE}.svc.cluster.local:8000"
    service = snippet["hub"]["services"]["nbgrader-exchange"]
    assert service["url"] == url
    assert "apiToken" in service
    scope = "access:services!service=nbgrader-exchange"
    assert scope in snippet["hub"]["loadRoles"]["user"]["scopes"]
    assert scope in snippet["hub"]["loadRoles"]["server"]["scopes"]
    # The OAuth client JupyterHub registers matches what the exchange is told.
    server = one(manifests({}), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item.get("value") for item in server["env"]}
    assert service["oauth_client_id"] == env["JUPYTERHUB_CLIENT_ID"]
    assert service["oauth_redirect_uri"] == env["JUPYTERHUB_OAUTH_CALLBACK_URL"]
    assert snippet["singleuser"]["extraEnv"]["NBGRADER_EXCHANGE_URL"] == f"{url}/"
    config = snippet["singleuser"]["extraFiles"]["nbgrader-exchange-config"]
    assert config["mountPath"] == "/etc/jupyter/nbgrader_config.py"
    assert "from nbgrader_exchange import" in config["stringData"]
    egress = snippet["singleuser"]["networkPolicy"]["egress"][0]
    labels = one(manifests({}), "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = egress["to"][0]["podSelector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert egress["ports"] == [{"port": 8000, "protocol": "TCP"}]
    # The command that prints the token names the Secret that holds it.
    assert f"get secret {RELEASE} -o jsonpath='{{.data.JUPYTERHUB_API_TOKEN}}'" in notes({})


def test_notes_follow_the_service_name_and_the_hub_secret():
    text = notes(
        {
            "hub": {
                "serviceName": "exchange",
                "apiTokenSecret": {"name": "hub", "key": "hub.services.exchange.apiToken"},
            }
        }
    )
    snippet = _pasteable_snippet(text)
    assert "apiToken" not in snippet["hub"]["services"]["exchange"]
    assert "access:services!service=exchange" in snippet["hub"]["loadRoles"]["user"]["scopes"]
    assert "Secret hub, key hub.services.exchange.apiToken" in text


def test_notes_ask_for_the_public_hub_url_until_it_is_set():
    assert "hub.publicUrl is not set" in notes({})
    assert "hub.publicUrl is not set" not in notes(
        {"hub": {"publicUrl": "https://hub.example.edu"}}
    )


def test_notes_warn_about_an_emptydir_database():
    assert "are lost when the pod goes" in notes({"persistence": {"enabled": False}})
    assert "are lost" not in notes({})


# --- values.yaml documents every key ------------------------------------------------------

# Kubernetes objects passed through as they are: their fields are Kubernetes', not ours.
_PASSTHROUGH = {"podSecurityContext", "securityContext", "resources"}


def test_every_value_is_commented():
    lines = (CHART / "values.yaml").read_text().splitlines()
    parents: list[tuple[int, str]] = []
    uncommented = []
    for number, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][\w.-]*):(.*)$", line)
        if not match:
            continue
        indent, key, rest = len(match.group(1)), match.group(2), match.group(3).strip()
        while parents and parents[-1][0] >= indent:
            parents.pop()
        inside_passthrough = any(name in _PASSTHROUGH for _, name in parents)
        parents.append((indent, key))
        is_group = (
            rest == ""
            and number + 1 < len(lines)
            and not lines[number + 1].lstrip().startswith("- ")
        )
        if inside_passthrough or (is_group and key not in _PASSTHROUGH):
            continue
        previous = lines[number - 1].strip() if number else ""
        if not previous.startswith("#"):
            uncommented.append(key)
    assert not uncommented, f"values.yaml keys without a comment: {uncommented}"


def _b64(value: str) -> str:
    import base64

    return base64.b64decode(value).decode()


def test_chart_app_version_is_the_project_version():
    """The image tag defaults to appVersion: it must name the release being packaged."""
    import tomllib

    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((CHART.parents[1] / "pyproject.toml").read_text())["project"]
    assert chart["appVersion"] == project["version"]
