from django.urls import path

from . import apis

urlpatterns = [
    path("actions/<slug:slug>", apis.ActionRunApi.as_view(), name="action-run"),
    path(
        "actions/<slug:slug>/fields/<slug:field>/options",
        apis.ActionFieldOptionsApi.as_view(),
        name="action-field-options",
    ),
]
