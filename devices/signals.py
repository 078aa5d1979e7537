from django.dispatch import Signal

# Sent inside the recording transaction with `events`: the list of DeviceEvents just stored.
# Receivers run in that transaction; work outside the database belongs in `transaction.on_commit`.
events_recorded = Signal()
