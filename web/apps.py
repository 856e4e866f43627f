"""The web pages: instructors' and students' views of courses, and login through JupyterHub."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class WebConfig(AppConfig):
    name = "web"
    verbose_name = _("Web pages")
