from typing import Any

from django.core.management.base import BaseCommand

from support.services import SUPPORT_GROUP, support_group_ensure


class Command(BaseCommand):
    help = 'Create or update the "Support" group (view everything, plus the staff actions). Idempotent.'

    def handle(self, *args: Any, **options: Any) -> None:
        group = support_group_ensure()
        self.stdout.write(
            self.style.SUCCESS(
                f'The "{SUPPORT_GROUP}" group has {group.permissions.count()} permissions. '
                "Next: give a staff user the group in /admin/ (Users → the user → Groups)."
            )
        )
