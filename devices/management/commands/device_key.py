"""Issue (or revoke) a device's API key. The key is printed once; only its hash is stored."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from devices.models import Device
from devices.services import device_api_key_issue, device_api_key_revoke


class Command(BaseCommand):
    help = "Print a new API key for a device (replacing its old one), or revoke its key with --revoke."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("device", help="The device's public id (as IFTTT and the account page show it).")
        parser.add_argument("--revoke", action="store_true", help="Revoke the key instead of issuing a new one.")

    def handle(self, *args: Any, device: str, revoke: bool, **options: Any) -> None:
        found = Device.objects.select_related("owner").filter(public_id=device).first()
        if found is None:
            raise CommandError(f"No device has the id {device!r}. Find ids on the account page or in the admin.")
        if revoke:
            device_api_key_revoke(device=found)
            self.stdout.write(f"Revoked the key of {found} (owner {found.owner.get_username()}).")
            return
        key = device_api_key_issue(device=found)
        self.stderr.write(
            f"New key for {found} (owner {found.owner.get_username()}). It is shown only now; any old key "
            "no longer works. Send it as 'Authorization: Device <key>' to POST /api/v1/device/events."
        )
        self.stdout.write(key)
