from django.urls import path

from . import apis

urlpatterns = [
    path("triggers/<slug:slug>", apis.trigger_poll, name="trigger-poll"),
    path(
        "triggers/<slug:slug>/fields/<slug:field>/options",
        apis.TriggerFieldOptionsApi.as_view(),
        name="trigger-field-options",
    ),
    path(
        "triggers/<slug:slug>/fields/<slug:field>/validate",
        apis.TriggerFieldValidateApi.as_view(),
        name="trigger-field-validate",
    ),
    # Contextual validation: the docs' path, and the OpenAPI file's.
    path("triggers/<slug:slug>/validate", apis.TriggerContextualValidateApi.as_view(), name="trigger-validate"),
    path(
        "triggers/<slug:slug>/fields/validate",
        apis.TriggerContextualValidateApi.as_view(),
        name="trigger-fields-validate",
    ),
    path(
        "triggers/<slug:slug>/trigger_identity/<str:identity>",
        apis.TriggerIdentityApi.as_view(),
        name="trigger-identity",
    ),
]
