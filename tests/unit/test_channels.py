"""channels.py: where events go, and who may subscribe to what (the gateway's half of the channel rules)."""

from __future__ import annotations

import pytest

from worker.channels import (
    ADMIN_SUB,
    ChannelGrant,
    authorize_channel,
    default_channels,
    event_channels,
    subject,
)
from worker.principal import Principal

ACCESS = {"notes": "private", "posts": "shared-read", "settings": "admin"}
ALICE, ADMIN = Principal("alice"), Principal(None, is_admin=True)
OPEN, SIGNED, REFUSED = ChannelGrant.OPEN, ChannelGrant.SIGNED, ChannelGrant.REFUSED


@pytest.mark.parametrize(("principal", "channel", "expected"), [
    (ALICE, "notes:*#alice", OPEN),
    (ALICE, "notes:n1#alice", OPEN),
    (ALICE, "notes:*#bob", REFUSED),
    (ALICE, "notes:*#alice,bob", REFUSED),
    (ALICE, "notes:*", REFUSED),
    (ALICE, "notes:n1", REFUSED),
    (ALICE, "posts:*", OPEN),
    (ALICE, "posts:p1", OPEN),
    (ALICE, "posts:*#alice", REFUSED),
    (ALICE, "settings:*", REFUSED),
    (ALICE, "unknown:*", REFUSED),
    (ALICE, "notes", REFUSED),
    (ALICE, "notes:", REFUSED),
    (ALICE, "notes:a:b#alice", REFUSED),
    (ADMIN, "notes:*", SIGNED),
    (ADMIN, "notes:*#alice", SIGNED),
    (ADMIN, "settings:s1", SIGNED),
    (Principal(None), "posts:*", REFUSED),
])
def test_authorize_channel(principal: Principal, channel: str, expected: ChannelGrant) -> None:
    assert authorize_channel(principal, channel, ACCESS) is expected


def test_event_channels_per_access_rule() -> None:
    assert event_channels("private", "notes", "n1", "alice") == ["notes:n1#alice", "notes:*#alice", "notes:*"]
    # admin-owned private document: the admin firehose only
    assert event_channels("private", "notes", "n1", None) == ["notes:*"]
    assert event_channels("shared-read", "posts", "p1", "bob") == ["posts:p1", "posts:*"]
    assert event_channels("admin", "settings", "s1", None) == ["settings:s1", "settings:*"]
    # an owner id that would escape the user-limited list gets no user channel
    assert event_channels("private", "notes", "n1", "eve#x,alice") == ["notes:*"]
    # nor does an id that is not channel-safe get a per-document channel
    assert event_channels("shared-read", "posts", "a:b", "bob") == ["posts:*"]


def test_the_broadcast_side_and_the_grant_side_agree() -> None:
    """Whoever the RLS rule lets read a document may subscribe to a channel its events go to; nobody else."""
    *own, firehose = event_channels("private", "notes", "d1", "alice")
    assert [authorize_channel(ALICE, c, ACCESS) for c in own] == [OPEN, OPEN]
    assert [authorize_channel(Principal("bob"), c, ACCESS) for c in own] == [REFUSED, REFUSED]
    assert authorize_channel(ALICE, firehose, ACCESS) is REFUSED
    assert authorize_channel(ADMIN, firehose, ACCESS) is SIGNED
    shared = event_channels("shared-read", "posts", "d1", "alice")
    for reader in (ALICE, Principal("bob")):
        assert {authorize_channel(reader, c, ACCESS) for c in shared} == {OPEN}


def test_default_channels_are_the_readable_collection_channels() -> None:
    assert default_channels(ALICE, ACCESS) == ["notes:*#alice", "posts:*"]
    assert default_channels(ADMIN, ACCESS) == ["notes:*", "posts:*", "settings:*"]
    assert default_channels(Principal(None), ACCESS) == []
    # a user id that is not channel-safe gets no user-limited channel (it could name someone else's)
    assert default_channels(Principal("a#b"), ACCESS) == ["posts:*"]
    assert all(authorize_channel(ALICE, c, ACCESS) is not REFUSED for c in default_channels(ALICE, ACCESS))


def test_subject_is_the_user_or_the_admin_identity() -> None:
    assert subject(ALICE) == "alice"
    assert subject(ADMIN) == ADMIN_SUB
    with pytest.raises(ValueError, match="anonymous"):
        subject(Principal(None))
