from django.urls import path

from . import apis

urlpatterns = [
    path("queries/<slug:slug>", apis.QueryPerformApi.as_view(), name="query-perform"),
    path(
        "queries/<slug:slug>/fields/<slug:field>/options",
        apis.QueryFieldOptionsApi.as_view(),
        name="query-field-options",
    ),
]
