from django.apps import AppConfig


class CoreConfig(AppConfig):
    """Shared building blocks below every app; an app only for its `serve` command."""

    name = "core"
    verbose_name = "Core"
