"""URLs of API v1."""

urlpatterns: list = []
