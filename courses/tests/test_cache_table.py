"""EXCHANGE_CACHE_URL=db://: `migrate` makes the cache table, and replicas share answers."""

from __future__ import annotations

import os

from tests.harness.live import run_manage as manage


def test_migrate_creates_the_database_cache_table_which_processes_share(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXCHANGE_", "DATABASE_"))}
    env.update(
        {
            "EXCHANGE_DATA_DIR": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "EXCHANGE_CACHE_URL": "db://",
            "SECRET_KEY": "cache-test",
        }
    )
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "shell", "-c", "from django.core.cache import cache; cache.set('k', 'v', 60)")
    seen = manage(env, "shell", "-c", "from django.core.cache import cache; print(cache.get('k'))")
    assert seen.stdout.strip().endswith("v")
    # A second migrate (every upgrade runs one) leaves the table as it is.
    manage(env, "migrate", "--noinput", "-v", "0")
    again = manage(env, "shell", "-c", "from django.core.cache import cache; print(cache.get('k'))")
    assert again.stdout.strip().endswith("v")
