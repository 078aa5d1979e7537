from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts import pages
from accounts import views as accounts_views
from core import views as core_views
from protocol import apis

ifttt_v1: list[URLPattern | URLResolver] = [
    path("status", apis.StatusApi.as_view(), name="status"),
    path("test/setup", apis.TestSetupApi.as_view(), name="test-setup"),
    path("user/info", apis.UserInfoApi.as_view(), name="user-info"),
    path("", include("triggers.urls")),
    path("", include("actions.urls")),
    path("", include("queries.urls")),
    path("webhooks/", include("connections.urls")),
]

urlpatterns = [
    # Outside /ifttt/: not in the API log, and no key needed (see README "Operating it").
    path("healthz", core_views.liveness, name="liveness"),
    path("readyz", core_views.ready, name="readiness"),
    path("metrics", core_views.metrics, name="metrics"),
    path("ifttt/v1/", include((ifttt_v1, "ifttt"))),
    # Our consent view first: it refuses unregistered redirect URIs where the toolkit's would not.
    path("oauth/authorize/", accounts_views.AuthorizationView.as_view(), name="oauth-authorize"),
    path("oauth/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("", include("accounts.urls")),
    path("admin/support/", include("support.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include("devices.urls")),
    # The public landing page and the service's identity (logo, brand colour) for every page.
    path("", pages.landing_view, name="landing"),
    path("brand/logo.svg", pages.logo_view, name="service-logo"),
    path("brand/theme.css", pages.theme_view, name="service-theme"),
    re_path(r"^(ifttt|api/v1)/", apis.NoSuchEndpointApi.as_view()),
]

handler400 = "core.errors.handler400"
handler404 = "core.errors.handler404"
handler500 = "core.errors.handler500"
