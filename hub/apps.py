"""The ``hub`` app: JupyterHub's side of the exchange (client, identity, OAuth, groups)."""

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class HubConfig(AppConfig):
    name = "hub"
    verbose_name = _("JupyterHub")
