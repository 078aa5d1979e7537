"""A trigger identity belongs to the user who first polled it: another user's request never changes it
and learns nothing about it."""

from __future__ import annotations

from typing import Any

from django.test import Client

from conftest import IftttClient
from devices.models import DeviceKind, EventSource
from devices.services import device_create, device_switch
from protocol.access import ifttt_token_issue
from triggers.models import TriggerIdentity

POLL = "/ifttt/v1/triggers/device_switched_on"


def _home(make_user: Any, name: str) -> tuple[IftttClient, Any]:
    user = make_user(name)
    lamp = device_create(owner=user, name=f"{name}'s lamp", kind=DeviceKind.LIGHT, room="Hall")
    return IftttClient(Client(), ifttt_token_issue(user=user).token), lamp


def _poll(ifttt: IftttClient, lamp: Any, identity: str) -> Any:
    return ifttt.post(POLL, {"triggerFields": {"device": lamp.public_id}, "trigger_identity": identity})


def test_another_users_poll_does_not_take_over_an_identity(db: Any, make_user: Any) -> None:
    alice, alice_lamp = _home(make_user, "alice")
    bob, bob_lamp = _home(make_user, "bob")
    device_switch(device=bob_lamp, on=True, source=EventSource.ACCOUNT)
    assert _poll(alice, alice_lamp, "alice-lamp").status_code == 200

    taken = _poll(bob, bob_lamp, "alice-lamp")
    fresh = _poll(bob, bob_lamp, "bob-lamp")
    # Bob sees his own events, exactly as with an identity nobody used.
    assert taken.status_code == fresh.status_code == 200
    assert taken.json() == fresh.json()
    assert [item["meta"]["id"] for item in taken.json()["data"]]

    identity = TriggerIdentity.objects.get(identity="alice-lamp")
    assert identity.user.username == "alice" and identity.is_live
    assert identity.fields == {"device": alice_lamp.public_id}

    # Alice's next event is still on her identity's feed, and her poll shows it.
    device_switch(device=alice_lamp, on=True, source=EventSource.ACCOUNT)
    assert identity.feed.count() == 1
    assert len(_poll(alice, alice_lamp, "alice-lamp").json()["data"]) == 1


def test_another_users_delete_is_answered_as_for_an_unknown_identity(db: Any, make_user: Any) -> None:
    alice, alice_lamp = _home(make_user, "alice")
    bob, _ = _home(make_user, "bob")
    assert _poll(alice, alice_lamp, "alice-lamp").status_code == 200

    theirs = bob.delete("/ifttt/v1/triggers/device_switched_on/trigger_identity/alice-lamp")
    unknown = bob.delete("/ifttt/v1/triggers/device_switched_on/trigger_identity/nobody-has-this")
    assert (theirs.status_code, theirs.json()) == (unknown.status_code, unknown.json()) == (200, {"data": {}})
    assert TriggerIdentity.objects.get(identity="alice-lamp").is_live

    mine = alice.delete("/ifttt/v1/triggers/device_switched_on/trigger_identity/alice-lamp")
    assert mine.status_code == 200
    assert not TriggerIdentity.objects.get(identity="alice-lamp").is_live
