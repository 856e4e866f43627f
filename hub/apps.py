"""The ``hub`` app: JupyterHub's side of the exchange (client, identity, OAuth, groups)."""

from django.apps import AppConfig


class HubConfig(AppConfig):
    name = "hub"
    verbose_name = "JupyterHub"  # a name: the same in every language
