from django.apps import AppConfig


class TriggersConfig(AppConfig):
    name = "triggers"
    verbose_name = "Triggers"

    def ready(self) -> None:
        from devices.signals import events_recorded

        from .services import on_events_recorded

        events_recorded.connect(on_events_recorded, dispatch_uid="triggers.feed_fan_out")

        from core.metrics import collector_register

        from .metrics import realtime_backlog

        collector_register(realtime_backlog)
