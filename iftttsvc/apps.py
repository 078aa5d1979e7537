from django.apps import AppConfig


class IftttsvcConfig(AppConfig):
    name = "iftttsvc"
    verbose_name = "IFTTT service"

    def ready(self) -> None:
        # Fill the registry: each protocol app declares its catalog in `catalog.py`.
        from .registry import registry

        registry.autodiscover()
