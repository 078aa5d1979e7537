from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from protocol.access import ifttt_application_ensure


class Command(BaseCommand):
    help = "Create or update IFTTT's OAuth2 application from the environment. Idempotent; run it on every deploy."

    def handle(self, *args: Any, **options: Any) -> None:
        application = ifttt_application_ensure()
        self.stdout.write(
            self.style.SUCCESS(
                f"IFTTT's OAuth application is ready: client id {application.client_id!r}, "
                f"redirect URI {settings.IFTTT_REDIRECT_URI}"
            )
        )
