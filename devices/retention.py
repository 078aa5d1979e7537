"""What the device domain keeps: everything, on purpose."""

from core.retention import history

from .models import Device, DeviceEvent

history(Device, why="the devices people own; deleted with the device or the account")
history(
    DeviceEvent,
    why="each event's id is IFTTT's meta.id forever, and IFTTT expects a trigger's events to stay on its timeline",
)
