"""The support console is the admin site, branded with the service's identity and organised around the
questions support answers, not around the code's apps (no "Axes", no "Django OAuth Toolkit")."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest

# app label → (what the section is called, its place): people first, then what they have, then the plumbing.
SECTIONS: dict[str, tuple[str, int]] = {
    "accounts": ("People", 0),
    "devices": ("Devices", 1),
    "triggers": ("Applets: triggers and Realtime notifications", 2),
    "actions": ("Applets: actions IFTTT ran", 3),
    "queries": ("Applets: queries", 4),
    "connections": ("Connect API (IFTTT's connections)", 5),
    "iftttsvc": ("Calls from IFTTT", 6),
    "support": ("IFTTT's access to people's accounts (tokens)", 7),
    "oauth2_provider": ("IFTTT as an OAuth client", 8),
    "axes": ("Sign-in lockouts", 9),
    "auth": ("Support staff: groups and permissions", 10),
    "admin": ("Support staff: what was changed", 11),
}
MODEL_NAMES: dict[tuple[str, str], str] = {
    ("iftttsvc", "ApiCall"): "Calls from IFTTT",
    ("iftttsvc", "ApiCallSummary"): "Calls per day (kept after the calls are pruned)",
    ("axes", "AccessAttempt"): "Failed sign-ins being counted",
    ("axes", "AccessFailureLog"): "Failed sign-ins (log)",
    ("axes", "AccessLog"): "Sign-ins (log)",
    ("admin", "LogEntry"): "Changes made in the console",
}


class ConsoleSite(admin.AdminSite):
    index_template = "admin/index.html"

    def each_context(self, request: HttpRequest) -> dict[str, Any]:
        self.site_header = f"{settings.SERVICE_NAME} support"
        self.site_title = f"{settings.SERVICE_NAME} support"
        self.index_title = "What do you need to find out?"
        return super().each_context(request)

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        for app in apps:
            name, _ = SECTIONS.get(app["app_label"], (app["name"], 99))
            app["name"] = name
            for model in app["models"]:
                model["name"] = MODEL_NAMES.get((app["app_label"], model["object_name"]), model["name"])
        return sorted(apps, key=lambda app: SECTIONS.get(app["app_label"], ("", 99))[1])
