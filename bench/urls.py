"""The service's URLs, plus two bare endpoints to measure the real ones against.

`POST /api/v1/_bench/device-bare` is the device API's: the same stack and device-key authentication,
the body parsed, a fixed 202, nothing recorded (bench/realtime.py).

`POST /ifttt/v1/_bench/bare` is the trigger poll's. It runs the same stack as a poll (middleware,
bearer-token authentication, the JSON parser, the renderer, IFTTT's error envelope: it lives under
/ifttt/ for that reason) and answers a fixed 50-item body shaped like a `device_switched_on`
timeline, so the difference between the two is the poll's own work: field validation, recording the
identity and reading its feed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from devices.apis import DeviceKeyAuthentication
from iftttsvc import urls as service_urls
from protocol.apis import UserApi


def _fixed_items(count: int) -> list[dict[str, Any]]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    items = []
    for n in range(count):
        moment = start - timedelta(hours=2 * n)
        items.append(
            {
                "device_id": "3f9a1c2b7d4e5f60",
                "device_name": "Living room lamp",
                "room": "Living room",
                "switched_on_at": moment.isoformat(timespec="seconds"),
                "meta": {"id": f"{n:032x}", "timestamp": int(moment.timestamp())},
            }
        )
    return items


BARE_ITEMS = _fixed_items(50)


class BareApi(UserApi):
    def post(self, request: Request) -> Response:
        # Parse the body as a poll does, so JSON parsing is part of the baseline too.
        _ = request.data
        return Response({"data": BARE_ITEMS})


class DeviceBareApi(APIView):
    authentication_classes = [DeviceKeyAuthentication]

    def post(self, request: Request) -> Response:
        _ = request.data
        return Response({"events": []}, status=202)


urlpatterns = [
    path("ifttt/v1/_bench/bare", BareApi.as_view(), name="bench-bare"),
    path("api/v1/_bench/device-bare", DeviceBareApi.as_view(), name="bench-device-bare"),
    *service_urls.urlpatterns,
]

handler400 = service_urls.handler400
handler404 = service_urls.handler404
handler500 = service_urls.handler500
