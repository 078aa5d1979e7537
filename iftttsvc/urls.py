from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import apis

ifttt_v1 = [
    path("status", apis.StatusApi.as_view(), name="status"),
    path("test/setup", apis.TestSetupApi.as_view(), name="test-setup"),
    path("user/info", apis.UserInfoApi.as_view(), name="user-info"),
    path("", include("triggers.urls")),
    path("", include("actions.urls")),
    path("", include("queries.urls")),
]

urlpatterns = [
    path("ifttt/v1/", include((ifttt_v1, "ifttt"))),
    path("oauth/", include("oauth2_provider.urls", namespace="oauth2_provider")),
    path("", include("accounts.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    re_path(r"^(ifttt|api/v1)/", apis.NoSuchEndpointApi.as_view()),
]

handler400 = "iftttsvc.errors.handler400"
handler404 = "iftttsvc.errors.handler404"
handler500 = "iftttsvc.errors.handler500"
