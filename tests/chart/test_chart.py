"""The Helm chart: lints, renders valid Kubernetes objects for every values file, refuses
combinations that cannot work, and maps values onto exactly the variables settings.py reads."""

from __future__ import annotations

import re

import helm_python as helm
import kubernetes_validate
import pytest

from .helpers import (
    CHART,
    NAMESPACE,
    RELEASE,
    REPLICATED,
    VALUES_FILES,
    by_kind,
    decoded,
    env_of,
    manifests,
    one,
    pod_containers,
    render_error,
    settings_env_names,
    values_file,
)

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
    assert plain["EXCHANGE_BLOB_CACHE_BYTES"] == "134217728"
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
    assert plain["EXCHANGE_DB_PREPARED_STATEMENTS"] == "true"
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


def test_prepared_statements_can_be_turned_off_for_a_pooler():
    values = values_file(REPLICATED)
    values["database"]["preparedStatements"] = False
    server = one(manifests(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert env_of(server)["EXCHANGE_DB_PREPARED_STATEMENTS"]["value"] == "false"
    sqlite = one(manifests({}), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert "EXCHANGE_DB_PREPARED_STATEMENTS" not in env_of(sqlite)


def test_secret_holds_the_values_given_and_generates_the_rest():
    objects = manifests(values_file(REPLICATED))
    secret = next(s for s in by_kind(objects, "Secret") if s["metadata"]["name"] == RELEASE)
    data = {key: decoded(value) for key, value in secret["data"].items()}
    assert data["DATABASE_URL"] == "postgresql://exchange:s3cret@db.example.edu:5432/exchange"
    assert data["EXCHANGE_S3_ACCESS_KEY_ID"] == "AKIAEXAMPLE"
    assert len(data["SECRET_KEY"]) == 64
    assert re.fullmatch(r"[a-z0-9]{64}", data["JUPYTERHUB_API_TOKEN"])
    # Given as values, they are used as they are.
    given = manifests({"secretKey": "k" * 50, "hub": {"apiToken": "t0ken"}})
    data = {k: decoded(v) for k, v in one(given, "Secret")["data"].items()}
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
