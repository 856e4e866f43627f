"""Names and email per membership: each course's roster says how it names a person, and the
site-wide user is no longer rewritten by a course. Existing memberships start with the
names their user has today, so every roster shows what it showed before."""

from django.db import migrations, models


def copy_user_names(apps, schema_editor):
    Membership = apps.get_model("courses", "Membership")
    batch = []
    for membership in Membership.objects.select_related("user").iterator(chunk_size=1000):
        user = membership.user
        membership.first_name = user.first_name
        membership.last_name = user.last_name
        membership.email = user.email
        batch.append(membership)
        if len(batch) >= 1000:
            Membership.objects.bulk_update(batch, ["first_name", "last_name", "email"])
            batch.clear()
    Membership.objects.bulk_update(batch, ["first_name", "last_name", "email"])


class Migration(migrations.Migration):
    dependencies = [
        ("courses", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="membership",
            name="email",
            field=models.EmailField(blank=True, max_length=254, verbose_name="email address"),
        ),
        migrations.AddField(
            model_name="membership",
            name="first_name",
            field=models.CharField(blank=True, max_length=150, verbose_name="first name"),
        ),
        migrations.AddField(
            model_name="membership",
            name="last_name",
            field=models.CharField(blank=True, max_length=150, verbose_name="last name"),
        ),
        migrations.RunPython(copy_user_names, migrations.RunPython.noop),
    ]
