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
        # What IFTTT's platform asks for when the service is created, from the same settings every page uses.
        site = settings.SITE_URL
        self.stdout.write(
            "\n".join(
                [
                    "The service on IFTTT's platform (check with `manage.py ifttt_review` before submitting):",
                    f"  Name              {settings.SERVICE_NAME}",
                    f"  Description       {settings.SERVICE_DESCRIPTION}",
                    f"  Service slug      {settings.IFTTT_SERVICE_SLUG}  (https://ifttt.com/{settings.IFTTT_SERVICE_SLUG})",
                    f"  Support email     {settings.SERVICE_SUPPORT_EMAIL}",
                    f"  Brand colour      {settings.SERVICE_BRAND_COLOR}",
                    f"  Logo (SVG)        {settings.SERVICE_LOGO}  (served at {site}/brand/logo.svg)",
                    f"  API URL prefix    {site}",
                    f"  Authorization URL {site}/oauth/authorize/",
                    f"  Token URL         {site}/oauth/token/",
                    f"  Landing page      {site}/",
                ]
            )
        )
