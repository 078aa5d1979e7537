from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from support.services import api_log_prune


class Command(BaseCommand):
    help = "Delete API-log rows older than API_LOG_RETENTION_DAYS (or --days). Beat runs this daily."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=None, help="keep this many days instead of the setting")

    def handle(self, *args: Any, **options: Any) -> None:
        days = options["days"] if options["days"] is not None else settings.API_LOG_RETENTION_DAYS
        self.stdout.write(f"Deleting API-log rows older than {days} days…")
        deleted = api_log_prune(older_than_days=days, progress=lambda n: self.stdout.write(f"  {n} deleted so far"))
        self.stdout.write(self.style.SUCCESS(f"Done: {deleted} row(s) deleted."))
