"""Top-level URLs: health probes, the admin site, the API, the login round trip through
JupyterHub and the web pages."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from social_django import views as social_views

from courses import health
from web import views as web_views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/login/", web_views.admin_login),
    path("admin/", admin.site.urls),
    path(f"{settings.API_PREFIX}v1/", include("api.urls")),
    # The hub's default OAuth redirect for a service is <prefix>/oauth_callback.
    path("oauth_callback", social_views.complete, {"backend": "jupyterhub"}, name="oauth-callback"),
    path("auth/", include("social_django.urls", namespace="social")),
    path("", include("web.urls")),
]

# JSON under the API's prefix, Django's HTML pages elsewhere.
handler400 = "exchange_site.errors.bad_request"
handler403 = "exchange_site.errors.permission_denied"
handler404 = "exchange_site.errors.page_not_found"
handler500 = "exchange_site.errors.server_error"
