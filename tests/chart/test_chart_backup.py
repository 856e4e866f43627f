"""The chart's backup CronJob (SQLite on a claim, PostgreSQL + S3) and the /tmp sizing rule."""

from __future__ import annotations

import helm_python as helm
import pytest

from .helpers import by_kind, manifests, one, values_file


def cronjob(values):
    return one(manifests(values), "CronJob")


def pod_spec(job):
    return job["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def test_no_backup_cronjob_unless_enabled():
    assert by_kind(manifests({}), "CronJob") == []


def test_sqlite_backup_runs_beside_the_server_on_its_claim():
    objects = manifests(values_file("backup-sqlite-claim"))
    job = one(objects, "CronJob")
    assert job["spec"]["schedule"] == "30 2 * * *"
    assert job["spec"]["timeZone"] == "Europe/Madrid"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    spec = pod_spec(job)
    (container,) = spec["containers"]
    assert container["command"] == ["python", "manage.py", "backup", "/backups/", "--keep=14"]
    claims = {
        v["name"]: v["persistentVolumeClaim"]["claimName"]
        for v in spec["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"data": "nbgrader-exchange-data", "backups": "exchange-backups"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"tmp": "/tmp", "data": "/data", "backups": "/backups"}
    # The ReadWriteOnce data claim: on the node of the server's pod.
    server_labels = one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    (term,) = spec["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == server_labels
    # Same environment as the server, and the Service never routes to the backup pod.
    server = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["env"] == server["env"]
    backup_labels = job["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    service_selector = one(objects, "Service")["spec"]["selector"]
    assert not set(service_selector.items()) <= set(backup_labels.items())


def test_postgresql_s3_backup_goes_to_the_bucket_from_any_node():
    job = cronjob(values_file("backup-postgresql-s3"))
    spec = pod_spec(job)
    (container,) = spec["containers"]
    assert container["command"][3:] == ["s3://exchange-backups/nightly/", "--keep=7"]
    assert "affinity" not in spec
    assert [v["name"] for v in spec["volumes"]] == ["tmp"]
    env = {e["name"]: e for e in container["env"]}
    assert env["EXCHANGE_S3_ENDPOINT_URL"]["value"] == "https://s3.example.edu"
    assert env["EXCHANGE_S3_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["key"]


@pytest.mark.parametrize(
    ("values", "sentence"),
    [
        ({"backup": {"enabled": True}}, "backup.enabled needs one target"),
        (
            {"backup": {"enabled": True, "s3Url": "s3://b/p/", "existingClaim": "c"}},
            "backup.enabled needs one target",
        ),
        ({"backup": {"enabled": True, "s3Url": "s3://b/p/"}}, "backup.s3Url needs storage.type=s3"),
        ({"backup": {"enabled": True, "s3Url": "https://b/p/"}}, "/backup/s3Url"),
        ({"backup": {"enabled": True, "existingClaim": "c", "keep": 0}}, "/backup/keep"),
        (
            {"backup": {"enabled": True, "existingClaim": "c"}, "persistence": {"enabled": False}},
            "another pod cannot read",
        ),
    ],
)
def test_backup_values_that_cannot_work_fail_with_a_sentence(values, sentence):
    with pytest.raises(helm.HelmError) as caught:
        manifests(values)
    assert sentence in str(caught.value)


def tmp_limit(values):
    spec = one(manifests(values), "Deployment")["spec"]["template"]["spec"]
    return next(v["emptyDir"]["sizeLimit"] for v in spec["volumes"] if v["name"] == "tmp")


def test_tmp_size_follows_the_rule_values_yaml_states():
    # Largest bundle (server default 2 GiB) x workers (2) x threads (4).
    assert tmp_limit({}) == "16Gi"
    assert tmp_limit({"limits": {"maxBundleSize": 536870912}, "gunicorn": {"threads": 2}}) == "2Gi"
    assert tmp_limit({"limits": {"maxBundleSize": "1000000"}}) == "8000000"
    assert tmp_limit({"tmpSizeLimit": "8Gi"}) == "8Gi"
    # With S3, plus the server's copies of small files: the chart counts the server's own
    # default (256 MiB) when the value is empty, so the two must agree.
    from django.conf import settings

    s3 = {"type": "s3", "s3": {"bucket": "b"}}
    assert settings.EXCHANGE_BLOB_CACHE_BYTES == 256 * 1024 * 1024
    assert tmp_limit({"storage": s3}) == "16640Mi"
    assert tmp_limit({"storage": {**s3, "s3": {"bucket": "b", "smallFileCacheBytes": 0}}}) == (
        "16Gi"
    )


def test_notes_say_how_to_back_up_from_outside_the_pod_and_where_nightly_backups_go():
    from .helpers import notes

    assert "exec deploy/nbgrader-exchange -- python manage.py backup - >" in notes({})
    assert "Nightly backups" not in notes({})
    text = notes(values_file("backup-sqlite-claim"))
    assert "CronJob nbgrader-exchange-backup (30 2 * * *) to claim exchange-backups" in text
    text = notes(values_file("backup-postgresql-s3"))
    assert "to s3://exchange-backups/nightly/, newest 7 kept" in text
    assert "/services/nbgrader-exchange/admin/" in text
