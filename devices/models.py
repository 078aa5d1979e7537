import secrets
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


def _device_public_id() -> str:
    return secrets.token_hex(8)


def event_public_id() -> str:
    return uuid.uuid4().hex


class DeviceKind(models.TextChoices):
    LIGHT = "light", "Light"
    PLUG = "plug", "Plug"
    THERMOSTAT = "thermostat", "Thermostat"
    MOTION_SENSOR = "motion_sensor", "Motion sensor"


SWITCHABLE_KINDS = (DeviceKind.LIGHT, DeviceKind.PLUG, DeviceKind.THERMOSTAT)


class Device(models.Model):
    public_id = models.CharField(max_length=32, unique=True, default=_device_public_id, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="devices")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=DeviceKind.choices)
    room = models.CharField(max_length=100, blank=True)
    is_on = models.BooleanField(default=False)
    online = models.BooleanField(default=True)
    color = models.CharField(max_length=32, blank=True, help_text="Lights: a CSS colour name or #rrggbb.")
    target_temperature = models.FloatField(null=True, blank=True, help_text="Thermostats, °C.")
    temperature = models.FloatField(null=True, blank=True, help_text="Thermostats: the last reading, °C.")
    temperature_measured_at = models.DateTimeField(null=True, blank=True)
    # The device API key is shown once; only its SHA-256 is kept. The prefix lets support tell keys apart.
    api_key_hash = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    api_key_prefix = models.CharField(max_length=12, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("room", "name", "id")
        indexes = [models.Index(fields=("owner", "kind"), name="device_owner_kind")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()}, {self.room or 'no room'})"


class EventType(models.TextChoices):
    SWITCHED_ON = "switched_on", "Switched on"
    SWITCHED_OFF = "switched_off", "Switched off"
    TEMPERATURE = "temperature", "Temperature reading"
    MOTION = "motion", "Motion detected"
    COLOR_CHANGED = "color_changed", "Colour changed"
    TARGET_TEMPERATURE_SET = "target_temperature_set", "Target temperature set"
    DEVICE_ADDED = "device_added", "Device added"


class EventSource(models.TextChoices):
    DEVICE = "device", "Device API"
    IFTTT = "ifttt", "IFTTT action"
    ACCOUNT = "account", "Account page"
    ADMIN = "admin", "Support console"
    SYSTEM = "system", "System"


class DeviceEvent(models.Model):
    """One state change or reading of a device: IFTTT's trigger event.

    `public_id` is IFTTT's `meta.id` for this event forever. `owner` repeats the device's owner so
    user-wide triggers are answered from an index without a join.
    """

    public_id = models.CharField(max_length=32, unique=True, default=event_public_id, editable=False)
    device = models.ForeignKey(Device, on_delete=models.CASCADE, related_name="events")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="device_events")
    type = models.CharField(max_length=32, choices=EventType.choices)
    data = models.JSONField(default=dict, blank=True)
    # Temperature readings: the reading and the device's reading before it, so a threshold
    # crossing (previous <= T < value) is a predicate on one row.
    value = models.FloatField(null=True, blank=True)
    previous_value = models.FloatField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    recorded_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=16, choices=EventSource.choices, default=EventSource.SYSTEM)
    # The device's own idempotency key (device API `event_id`): a retried event is stored once.
    external_id = models.CharField(max_length=100, null=True, blank=True)

    class Meta:
        ordering = ("-occurred_at", "-id")
        constraints = [
            models.UniqueConstraint(
                fields=("device", "external_id"),
                condition=Q(external_id__isnull=False),
                name="device_event_external_id_unique",
            ),
        ]
        indexes = [
            models.Index(fields=("device", "type", "-occurred_at", "-id"), name="event_device_type_time"),
            models.Index(fields=("owner", "type", "-occurred_at", "-id"), name="event_owner_type_time"),
            models.Index(fields=("device", "-occurred_at", "-id"), name="event_device_time"),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()} · {self.device.name} · {self.occurred_at:%Y-%m-%d %H:%M:%S}"
