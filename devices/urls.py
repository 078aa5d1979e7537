from django.urls import path

from . import apis

app_name = "devices"

urlpatterns = [
    path("device/events", apis.DeviceEventsApi.as_view(), name="device-events"),
]
