"""API tokens expire: a new ``expires_at``; tokens made before it get the default lifetime
(EXCHANGE_API_TOKEN_DAYS) from the upgrade on, so none stays valid for ever unnoticed."""

import datetime as dt

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def expire_existing_tokens(apps, schema_editor):
    ApiToken = apps.get_model("api", "ApiToken")
    lifetime = dt.timedelta(days=getattr(settings, "EXCHANGE_API_TOKEN_DAYS", 90))
    ApiToken.objects.filter(revoked_at__isnull=True, expires_at__isnull=True).update(
        expires_at=timezone.now() + lifetime
    )


class Migration(migrations.Migration):
    dependencies = [("api", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="apitoken",
            name="expires_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="expires"),
        ),
        migrations.RunPython(expire_existing_tokens, migrations.RunPython.noop),
    ]
