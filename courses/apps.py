from django.apps import AppConfig
from django.core.signals import request_started
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def create_cache_table(using: str = "default", **kwargs: object) -> None:
    """Every ``migrate`` makes the database cache's table when EXCHANGE_CACHE_URL=db:// (and
    does nothing otherwise, or when it exists), so switching the cache later needs no step."""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)


class CoursesConfig(AppConfig):
    name = "courses"
    verbose_name = "Courses"

    def ready(self) -> None:
        from .dependencies import close_if_prepared_before_a_schema_change, note_new_connection
        from .filemodes import make_sqlite_private
        from .site_admins import refresh_admin_group_permissions

        post_migrate.connect(create_cache_table, sender=self)
        connection_created.connect(make_sqlite_private, dispatch_uid="courses.make_sqlite_private")
        # A statement prepared before an upgrade changed its columns fails one request per
        # process, not one per connection (courses/dependencies.py).
        connection_created.connect(note_new_connection, dispatch_uid="courses.note_connection")
        request_started.connect(
            close_if_prepared_before_a_schema_change, dispatch_uid="courses.schema_changes"
        )
        # Every app's post_migrate: new models' permissions reach exchange-admins.
        post_migrate.connect(refresh_admin_group_permissions)
