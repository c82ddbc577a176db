"""Conformance suite for every :class:`~codesphere.storage.base.Storage` backend.

The tests are written against the protocol only. Every backend is listed in
``BACKENDS`` as a factory that builds an unopened storage whose data lives at a
given location (a fresh directory per test); calling the factory again with the
same location must reach the same data, which is how reopening is tested. To
add a backend, append a ``pytest.param(factory, id=...)`` to ``BACKENDS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from codesphere.storage import (
    AlreadyExists,
    ChatRecord,
    DocumentRecord,
    InviteRecord,
    InviteUnusable,
    MemberRecord,
    NotFound,
    OpRecord,
    RevisionConflict,
    RoomRecord,
    SqliteStorage,
    Storage,
    StorageError,
)

BackendFactory = Callable[[Path], Storage]


def sqlite_backend(location: Path) -> Storage:
    """Build a SQLite storage in ``location``."""
    return SqliteStorage(location / "codesphere.db")


BACKENDS = [pytest.param(sqlite_backend, id="sqlite")]


@pytest.fixture(params=BACKENDS)
def make_storage(request: pytest.FixtureRequest) -> BackendFactory:
    """The backend factory under test."""
    factory: BackendFactory = request.param
    return factory


@pytest.fixture
async def storage(make_storage: BackendFactory, tmp_path: Path) -> AsyncIterator[Storage]:
    """An open storage of the backend under test, closed after the test."""
    store = make_storage(tmp_path)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


# --------------------------------------------------------------------- helpers


def room(room_id: str = "r1", created_at: float = 1.0) -> RoomRecord:
    return RoomRecord(id=room_id, name=f"Room {room_id}", created_at=created_at, updated_at=2.0)


def doc(
    doc_id: str = "d1", path: str | None = None, room_id: str = "r1", eol: str = "\n"
) -> DocumentRecord:
    return DocumentRecord(
        room_id=room_id,
        id=doc_id,
        path=path if path is not None else f"src/{doc_id}.py",
        eol=eol,
        created_at=3.0,
        revision=0,
    )


def member(member_id: str = "u1", role: str = "editor", room_id: str = "r1") -> MemberRecord:
    return MemberRecord(
        room_id=room_id, id=member_id, name=f"User {member_id}", color="#123456", role=role,
        joined_at=4.0,
    )  # fmt: skip


def op(revision: int, author: str = "u1") -> OpRecord:
    payload: list[Any] = [revision, "insert", {"text": f"é{revision}", "at": [1, 2.5, None]}]
    return OpRecord(
        revision=revision,
        author=author,
        timestamp=1000.0 + revision,
        op=payload,
        seq=revision * 3,
        member=f"member-{author}",
    )


def ops(first: int, last: int) -> list[OpRecord]:
    return [op(revision) for revision in range(first, last + 1)]


async def setup_doc(storage: Storage, doc_id: str = "d1", text: str = "hello") -> None:
    if await storage.get_room("r1") is None:
        await storage.create_room(room("r1"))
    await storage.create_document(doc(doc_id), text)


async def post(storage: Storage, text: str, room_id: str = "r1") -> ChatRecord:
    return await storage.append_chat(room_id, f"m-{text}", "u1", "User u1", text, 5.0)


# ----------------------------------------------------------------------- rooms


async def test_storage_satisfies_protocol(storage: Storage) -> None:
    """The backend structurally implements the Storage protocol."""
    assert isinstance(storage, Storage)


async def test_create_and_get_room(storage: Storage) -> None:
    """A created room is returned unchanged by get_room."""
    await storage.create_room(room("r1"))
    assert await storage.get_room("r1") == room("r1")


async def test_get_missing_room_returns_none(storage: Storage) -> None:
    """get_room returns None for an unknown id."""
    assert await storage.get_room("nope") is None


async def test_create_duplicate_room_raises_already_exists(storage: Storage) -> None:
    """Creating a room with a taken id raises AlreadyExists and keeps the original."""
    await storage.create_room(room("r1"))
    with pytest.raises(AlreadyExists):
        await storage.create_room(RoomRecord("r1", "other", 9.0, 9.0))
    assert await storage.get_room("r1") == room("r1")


async def test_list_rooms_ordered_by_creation_time(storage: Storage) -> None:
    """list_rooms returns every room ordered by created_at, then id."""
    assert await storage.list_rooms() == []
    await storage.create_room(room("b", created_at=2.0))
    await storage.create_room(room("c", created_at=1.0))
    await storage.create_room(room("a", created_at=2.0))
    assert [r.id for r in await storage.list_rooms()] == ["c", "a", "b"]


async def test_touch_room_sets_updated_at(storage: Storage) -> None:
    """touch_room changes only updated_at."""
    await storage.create_room(room("r1"))
    await storage.touch_room("r1", 42.0)
    assert await storage.get_room("r1") == RoomRecord("r1", "Room r1", 1.0, 42.0)


async def test_touch_missing_room_raises_not_found(storage: Storage) -> None:
    """touch_room on an unknown room raises NotFound."""
    with pytest.raises(NotFound):
        await storage.touch_room("nope", 1.0)


async def test_delete_missing_room_raises_not_found(storage: Storage) -> None:
    """delete_room on an unknown room raises NotFound."""
    with pytest.raises(NotFound):
        await storage.delete_room("nope")


async def test_delete_room_cascades_to_everything_in_it(storage: Storage) -> None:
    """delete_room removes members, documents, ops and chat, and leaves other rooms alone."""
    for room_id in ("r1", "r2"):
        await storage.create_room(room(room_id))
        await storage.upsert_member(member(room_id=room_id))
        await storage.create_document(doc(room_id=room_id), "text")
        await storage.append_ops(room_id, "d1", 0, ops(1, 3))
        await post(storage, "hi", room_id=room_id)

    await storage.delete_room("r1")

    assert await storage.get_room("r1") is None
    assert [r.id for r in await storage.list_rooms()] == ["r2"]
    with pytest.raises(NotFound):
        await storage.list_members("r1")
    with pytest.raises(NotFound):
        await storage.load_document("r1", "d1")
    # Re-creating the room id starts from nothing.
    await storage.create_room(room("r1"))
    assert await storage.list_members("r1") == []
    assert await storage.list_documents("r1") == []
    assert await storage.chat_history("r1") == []
    assert (await post(storage, "again")).seq == 1
    await storage.create_document(doc(room_id="r1"), "fresh")
    assert (await storage.load_document("r1", "d1")).ops == []
    # The other room is untouched.
    assert len(await storage.list_members("r2")) == 1
    assert len(await storage.read_ops("r2", "d1", 0)) == 3
    assert len(await storage.chat_history("r2")) == 1


# --------------------------------------------------------------------- members


async def test_upsert_member_inserts_then_replaces(storage: Storage) -> None:
    """upsert_member adds new members and replaces every field of existing ones."""
    await storage.create_room(room("r1"))
    await storage.upsert_member(member("u1", "owner"))
    await storage.upsert_member(member("u2", "viewer"))
    changed = MemberRecord("r1", "u2", "Renamed", "#abcdef", "editor", 9.0)
    await storage.upsert_member(changed)
    assert await storage.list_members("r1") == [member("u1", "owner"), changed]


async def test_list_members_ordered_by_join_time(storage: Storage) -> None:
    """list_members orders by joined_at, then id."""
    await storage.create_room(room("r1"))
    for member_id, joined_at in (("c", 2.0), ("b", 1.0), ("a", 2.0)):
        await storage.upsert_member(MemberRecord("r1", member_id, "n", "#000", "viewer", joined_at))
    assert [m.id for m in await storage.list_members("r1")] == ["b", "a", "c"]


async def test_upsert_member_rejects_invalid_role(storage: Storage) -> None:
    """A role other than owner/editor/viewer raises ValueError."""
    await storage.create_room(room("r1"))
    with pytest.raises(ValueError):
        await storage.upsert_member(member(role="admin"))
    assert await storage.list_members("r1") == []


async def test_member_methods_on_missing_room_raise_not_found(storage: Storage) -> None:
    """upsert_member and list_members on an unknown room raise NotFound."""
    with pytest.raises(NotFound):
        await storage.upsert_member(member(room_id="nope"))
    with pytest.raises(NotFound):
        await storage.list_members("nope")


async def test_get_and_delete_member(storage: Storage) -> None:
    """get_member finds one member; delete_member removes it, and only it."""
    await storage.create_room(room("r1"))
    await storage.upsert_member(member("u1"))
    await storage.upsert_member(member("u2"))
    assert await storage.get_member("r1", "u1") == member("u1")
    assert await storage.get_member("r1", "nobody") is None
    assert await storage.get_member("nope", "u1") is None
    await storage.delete_member("r1", "u1")
    assert await storage.get_member("r1", "u1") is None
    assert [m.id for m in await storage.list_members("r1")] == ["u2"]
    with pytest.raises(NotFound):
        await storage.delete_member("r1", "u1")


async def test_rooms_of_user_lists_memberships_by_room_creation(storage: Storage) -> None:
    """rooms_of_user returns each room the user is a member of, with that membership."""
    for room_id, created in (("r2", 2.0), ("r1", 1.0), ("r3", 3.0)):
        await storage.create_room(room(room_id, created))
    alice_2 = MemberRecord("r2", "m-a2", "Alice", "#111", "owner", 5.0, user_id="alice")
    alice_1 = MemberRecord("r1", "m-a1", "Alice", "#111", "viewer", 6.0, user_id="alice")
    guest = MemberRecord("r3", "m-g", "Guest", "#222", "editor", 7.0, invite_id="i1")
    for m in (alice_2, alice_1, guest):
        await storage.upsert_member(m)
    mine = await storage.rooms_of_user("alice")
    assert [(r.id, m) for r, m in mine] == [("r1", alice_1), ("r2", alice_2)]
    assert await storage.rooms_of_user("bob") == []


# --------------------------------------------------------------------- invites


def invite(
    invite_id: str = "i1", room_id: str = "r1", max_uses: int | None = None, expires: float = 100.0
) -> InviteRecord:
    return InviteRecord(room_id, invite_id, "editor", 10.0, expires, max_uses, 0, None, "u1")


async def test_create_get_list_and_revoke_invites(storage: Storage) -> None:
    """Invites round-trip; revoking keeps the first revocation time."""
    await storage.create_room(room("r1"))
    await storage.create_room(room("r2", 2.0))
    await storage.create_invite(invite("i1"))
    await storage.create_invite(invite("i2", max_uses=3))
    await storage.create_invite(invite("i3", room_id="r2"))
    assert await storage.get_invite("i2") == invite("i2", max_uses=3)
    assert await storage.get_invite("nope") is None
    assert [i.id for i in await storage.list_invites("r1")] == ["i1", "i2"]
    await storage.revoke_invite("r1", "i1", 50.0)
    await storage.revoke_invite("r1", "i1", 60.0)
    revoked = await storage.get_invite("i1")
    assert revoked is not None and revoked.revoked_at == 50.0
    with pytest.raises(NotFound):
        await storage.revoke_invite("r1", "i3", 50.0)  # another room's invite
    with pytest.raises(AlreadyExists):
        await storage.create_invite(invite("i1"))
    with pytest.raises(NotFound):
        await storage.create_invite(invite("i9", room_id="nope"))
    with pytest.raises(NotFound):
        await storage.list_invites("nope")


async def test_create_invite_validates_record(storage: Storage) -> None:
    """A bad role or a max_uses below one raises ValueError and stores nothing."""
    await storage.create_room(room("r1"))
    with pytest.raises(ValueError):
        await storage.create_invite(
            InviteRecord("r1", "i1", "admin", 1.0, 2.0, None, 0, None, "u1")
        )
    with pytest.raises(ValueError):
        await storage.create_invite(invite("i1", max_uses=0))
    assert await storage.list_invites("r1") == []


async def test_redeem_invite_counts_uses_and_adds_the_member(storage: Storage) -> None:
    """Each redemption adds its member and one use, up to max_uses."""
    await storage.create_room(room("r1"))
    await storage.create_invite(invite("i1", max_uses=2))
    first = MemberRecord("r1", "m1", "One", "#111", "editor", 20.0, invite_id="i1")
    second = MemberRecord("r1", "m2", "Two", "#222", "editor", 21.0, invite_id="i1")
    await storage.redeem_invite("i1", 20.0, first)
    await storage.redeem_invite("i1", 21.0, second)
    with pytest.raises(InviteUnusable, match="used up"):
        await storage.redeem_invite("i1", 22.0, member("m3"))
    used = await storage.get_invite("i1")
    assert used is not None and used.uses == 2
    assert await storage.list_members("r1") == [first, second]


async def test_redeem_refuses_revoked_expired_and_foreign_invites(storage: Storage) -> None:
    """A revoked, expired, unknown or other room's invite admits nobody and counts nothing."""
    await storage.create_room(room("r1"))
    await storage.create_room(room("r2", 2.0))
    await storage.create_invite(invite("old", expires=30.0))
    await storage.create_invite(invite("gone"))
    await storage.create_invite(invite("elsewhere", room_id="r2"))
    await storage.revoke_invite("r1", "gone", 15.0)
    with pytest.raises(InviteUnusable, match="expired"):
        await storage.redeem_invite("old", 30.0, member("m1"))
    with pytest.raises(InviteUnusable, match="revoked"):
        await storage.redeem_invite("gone", 20.0, member("m1"))
    with pytest.raises(NotFound):
        await storage.redeem_invite("nope", 20.0, member("m1"))
    with pytest.raises(NotFound):
        await storage.redeem_invite("elsewhere", 20.0, member("m1"))
    assert await storage.list_members("r1") == []
    for invite_id in ("old", "gone", "elsewhere"):
        stored = await storage.get_invite(invite_id)
        assert stored is not None and stored.uses == 0


async def test_single_use_invite_admits_one_of_many_racing_redeemers(storage: Storage) -> None:
    """Concurrent redemptions of a single-use invite: exactly one member gets in."""
    await storage.create_room(room("r1"))
    await storage.create_invite(invite("i1", max_uses=1))
    results = await asyncio.gather(
        *(storage.redeem_invite("i1", 20.0, member(f"m{i}")) for i in range(10)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, InviteUnusable) for r in results if r is not None)
    assert len(await storage.list_members("r1")) == 1


async def test_delete_room_removes_its_invites(storage: Storage) -> None:
    """Invites go with their room."""
    await storage.create_room(room("r1"))
    await storage.create_invite(invite("i1"))
    await storage.delete_room("r1")
    assert await storage.get_invite("i1") is None


# ------------------------------------------------------------------- documents


async def test_create_document_stores_revision_zero_snapshot(storage: Storage) -> None:
    """A new document loads as its text at revision 0 with no ops."""
    await storage.create_room(room("r1"))
    record = doc("d1", eol="\r\n")
    await storage.create_document(record, "line1\r\nline2")
    loaded = await storage.load_document("r1", "d1")
    assert loaded.record == record
    assert (loaded.snapshot_revision, loaded.snapshot_text, loaded.ops) == (
        0,
        "line1\r\nline2",
        [],
    )


async def test_create_document_duplicates_raise_already_exists(storage: Storage) -> None:
    """A taken document id or path in the room raises AlreadyExists."""
    await setup_doc(storage, "d1")
    with pytest.raises(AlreadyExists):
        await storage.create_document(doc("d1", path="other.py"), "")
    with pytest.raises(AlreadyExists):
        await storage.create_document(doc("d2", path="src/d1.py"), "")
    assert [d.id for d in await storage.list_documents("r1")] == ["d1"]


async def test_document_ids_and_paths_are_scoped_to_their_room(storage: Storage) -> None:
    """The same document id and path may exist in two rooms independently."""
    await storage.create_room(room("r1"))
    await storage.create_room(room("r2"))
    await storage.create_document(doc("d1", room_id="r1"), "one")
    await storage.create_document(doc("d1", room_id="r2"), "two")
    await storage.append_ops("r1", "d1", 0, ops(1, 2))
    assert (await storage.load_document("r1", "d1")).record.revision == 2
    loaded = await storage.load_document("r2", "d1")
    assert (loaded.record.revision, loaded.snapshot_text) == (0, "two")


async def test_create_document_in_missing_room_raises_not_found(storage: Storage) -> None:
    """create_document in an unknown room raises NotFound."""
    with pytest.raises(NotFound):
        await storage.create_document(doc(room_id="nope"), "")


async def test_create_document_validates_record(storage: Storage) -> None:
    """A non-zero revision or an unknown eol raises ValueError."""
    await storage.create_room(room("r1"))
    with pytest.raises(ValueError):
        await storage.create_document(DocumentRecord("r1", "d1", "a.py", "\n", 0.0, 3), "")
    with pytest.raises(ValueError):
        await storage.create_document(doc(eol="\r"), "")
    assert await storage.list_documents("r1") == []


async def test_list_documents_ordered_by_path_with_heads(storage: Storage) -> None:
    """list_documents returns the room's documents by path with their durable heads."""
    await storage.create_room(room("r1"))
    await storage.create_document(doc("d1", path="z.py"), "")
    await storage.create_document(doc("d2", path="a.py"), "")
    await storage.append_ops("r1", "d1", 0, ops(1, 4))
    listed = await storage.list_documents("r1")
    assert [(d.id, d.path, d.revision) for d in listed] == [("d2", "a.py", 0), ("d1", "z.py", 4)]
    with pytest.raises(NotFound):
        await storage.list_documents("nope")


async def test_rename_document(storage: Storage) -> None:
    """rename_document moves a document to a free path and keeps its history."""
    await setup_doc(storage, "d1")
    await storage.append_ops("r1", "d1", 0, ops(1, 2))
    await storage.rename_document("r1", "d1", "lib/new.py")
    loaded = await storage.load_document("r1", "d1")
    assert (loaded.record.path, loaded.record.revision, len(loaded.ops)) == ("lib/new.py", 2, 2)
    # The old path is free again.
    await storage.create_document(doc("d2", path="src/d1.py"), "")


async def test_rename_document_to_own_path_is_a_no_op(storage: Storage) -> None:
    """Renaming a document to its current path succeeds and changes nothing."""
    await setup_doc(storage, "d1")
    await storage.rename_document("r1", "d1", "src/d1.py")
    assert (await storage.load_document("r1", "d1")).record == doc("d1")


async def test_rename_document_errors(storage: Storage) -> None:
    """Renaming onto a taken path raises AlreadyExists; an unknown document NotFound."""
    await setup_doc(storage, "d1")
    await setup_doc(storage, "d2")
    with pytest.raises(AlreadyExists):
        await storage.rename_document("r1", "d1", "src/d2.py")
    with pytest.raises(NotFound):
        await storage.rename_document("r1", "nope", "x.py")
    assert (await storage.load_document("r1", "d1")).record.path == "src/d1.py"


async def test_delete_document_removes_it_and_its_ops(storage: Storage) -> None:
    """delete_document removes the document and history and frees its id and path."""
    await setup_doc(storage, "d1")
    await setup_doc(storage, "d2")
    await storage.append_ops("r1", "d1", 0, ops(1, 3))
    await storage.delete_document("r1", "d1")
    assert [d.id for d in await storage.list_documents("r1")] == ["d2"]
    with pytest.raises(NotFound):
        await storage.load_document("r1", "d1")
    with pytest.raises(NotFound):
        await storage.read_ops("r1", "d1", 0)
    with pytest.raises(NotFound):
        await storage.delete_document("r1", "d1")
    await storage.create_document(doc("d1"), "again")
    assert await storage.read_ops("r1", "d1", 0) == []


async def test_missing_document_raises_not_found_everywhere(storage: Storage) -> None:
    """Every document method raises NotFound for an unknown document."""
    await storage.create_room(room("r1"))
    with pytest.raises(NotFound):
        await storage.load_document("r1", "nope")
    with pytest.raises(NotFound):
        await storage.append_ops("r1", "nope", 0, ops(1, 1))
    with pytest.raises(NotFound):
        await storage.read_ops("r1", "nope", 0)
    with pytest.raises(NotFound):
        await storage.save_snapshot("r1", "nope", 0, "")
    with pytest.raises(NotFound):
        await storage.load_document("other-room", "nope")


# ------------------------------------------------------------------ op history


async def test_append_ops_advances_head_and_round_trips_ops(storage: Storage) -> None:
    """Appended ops read back equal, in order, and the head is the last revision."""
    await setup_doc(storage)
    await storage.append_ops("r1", "d1", 0, ops(1, 1))
    await storage.append_ops("r1", "d1", 1, ops(2, 5))
    assert await storage.read_ops("r1", "d1", 0) == ops(1, 5)
    loaded = await storage.load_document("r1", "d1")
    assert (loaded.record.revision, loaded.ops) == (5, ops(1, 5))


async def test_append_ops_with_wrong_expected_head_writes_nothing(storage: Storage) -> None:
    """A stale or future expected head raises RevisionConflict and leaves history as is."""
    await setup_doc(storage)
    await storage.append_ops("r1", "d1", 0, ops(1, 2))
    with pytest.raises(RevisionConflict):
        await storage.append_ops("r1", "d1", 1, ops(2, 3))
    with pytest.raises(RevisionConflict):
        await storage.append_ops("r1", "d1", 3, ops(4, 4))
    assert await storage.read_ops("r1", "d1", 0) == ops(1, 2)
    assert (await storage.load_document("r1", "d1")).record.revision == 2


async def test_append_ops_with_revision_gap_writes_nothing(storage: Storage) -> None:
    """Op revisions that skip or do not start at head+1 raise RevisionConflict."""
    await setup_doc(storage)
    with pytest.raises(RevisionConflict):
        await storage.append_ops("r1", "d1", 0, [op(1), op(3)])
    with pytest.raises(RevisionConflict):
        await storage.append_ops("r1", "d1", 0, [op(2)])
    with pytest.raises(RevisionConflict):
        await storage.append_ops("r1", "d1", 0, [op(1), op(1)])
    assert await storage.read_ops("r1", "d1", 0) == []
    await storage.append_ops("r1", "d1", 0, ops(1, 2))
    assert (await storage.load_document("r1", "d1")).record.revision == 2


async def test_append_empty_ops_only_checks_head(storage: Storage) -> None:
    """Appending no ops succeeds at the right head and conflicts at a wrong one."""
    await setup_doc(storage)
    await storage.append_ops("r1", "d1", 0, [])
    with pytest.raises(RevisionConflict):
        await storage.append_ops("r1", "d1", 1, [])
    assert (await storage.load_document("r1", "d1")).record.revision == 0


async def test_conflict_in_a_concurrent_batch_does_not_spoil_the_others(
    storage: Storage,
) -> None:
    """Failing writes issued together with good ones fail alone; the good ones commit."""
    await storage.create_room(room("r1"))
    for i in range(10):
        await storage.create_document(doc(f"d{i}"), "")
    await storage.append_ops("r1", "d0", 0, ops(1, 1))

    results = await asyncio.gather(
        *(storage.append_ops("r1", f"d{i}", 0, ops(1, 2)) for i in range(1, 10)),
        storage.append_ops("r1", "d0", 0, ops(1, 1)),  # stale head
        storage.create_room(room("r1")),  # duplicate
        storage.append_ops("r1", "missing", 0, ops(1, 1)),  # unknown document
        return_exceptions=True,
    )

    assert results[:9] == [None] * 9
    assert isinstance(results[9], RevisionConflict)
    assert isinstance(results[10], AlreadyExists)
    assert isinstance(results[11], NotFound)
    for i in range(1, 10):
        assert await storage.read_ops("r1", f"d{i}", 0) == ops(1, 2)
    assert await storage.read_ops("r1", "d0", 0) == ops(1, 1)


async def test_concurrent_appends_at_same_head_have_one_winner(storage: Storage) -> None:
    """Of many concurrent appends based on the same head exactly one succeeds."""
    await setup_doc(storage)
    attempts = [storage.append_ops("r1", "d1", 0, [op(1, author=f"u{i}")]) for i in range(20)]
    results = await asyncio.gather(*attempts, return_exceptions=True)
    winners = [i for i, result in enumerate(results) if result is None]
    assert len(winners) == 1
    assert all(isinstance(r, RevisionConflict) for r in results if r is not None)
    assert await storage.read_ops("r1", "d1", 0) == [op(1, author=f"u{winners[0]}")]


async def test_many_concurrent_appends_all_land_and_are_batched(storage: Storage) -> None:
    """200 concurrent appends on different documents all land, in fewer commits than writes."""
    await storage.create_room(room("r1"))
    await asyncio.gather(*(storage.create_document(doc(f"d{i}"), "") for i in range(200)))
    commits_before = getattr(storage, "commit_count", None)

    await asyncio.gather(
        *(storage.append_ops("r1", f"d{i}", 0, ops(1, 1 + i % 3)) for i in range(200))
    )

    for i in range(200):
        assert await storage.read_ops("r1", f"d{i}", 0) == ops(1, 1 + i % 3)
    if commits_before is not None:  # backends exposing commit_count must group commits
        commits = getattr(storage, "commit_count") - commits_before  # noqa: B009
        assert 1 <= commits < 200


async def test_read_ops_since_and_limit(storage: Storage) -> None:
    """read_ops returns ops after since_revision, oldest first, at most limit of them."""
    await setup_doc(storage)
    await storage.append_ops("r1", "d1", 0, ops(1, 10))
    assert await storage.read_ops("r1", "d1", 7) == ops(8, 10)
    assert await storage.read_ops("r1", "d1", 2, limit=3) == ops(3, 5)
    assert await storage.read_ops("r1", "d1", 0, limit=0) == []
    assert await storage.read_ops("r1", "d1", 10) == []
    assert await storage.read_ops("r1", "d1", 99) == []


async def test_reads_see_each_acknowledged_write(storage: Storage) -> None:
    """A read issued after a write returns sees that write."""
    await setup_doc(storage)
    for revision in range(1, 31):
        await storage.append_ops("r1", "d1", revision - 1, [op(revision)])
        assert (await storage.read_ops("r1", "d1", revision - 1)) == [op(revision)]


# ------------------------------------------------------------------- snapshots


async def test_snapshot_moves_load_base_but_keeps_history(storage: Storage) -> None:
    """After save_snapshot, load returns that snapshot plus later ops; all ops stay readable."""
    await setup_doc(storage, text="v0")
    await storage.append_ops("r1", "d1", 0, ops(1, 5))
    await storage.save_snapshot("r1", "d1", 3, "v3")
    loaded = await storage.load_document("r1", "d1")
    assert (loaded.snapshot_revision, loaded.snapshot_text, loaded.ops) == (3, "v3", ops(4, 5))
    assert loaded.record.revision == 5
    assert await storage.read_ops("r1", "d1", 0) == ops(1, 5)
    await storage.save_snapshot("r1", "d1", 5, "v5")
    loaded = await storage.load_document("r1", "d1")
    assert (loaded.snapshot_revision, loaded.snapshot_text, loaded.ops) == (5, "v5", [])


async def test_older_snapshot_is_ignored(storage: Storage) -> None:
    """Saving a snapshot older than the stored one keeps the newer snapshot."""
    await setup_doc(storage)
    await storage.append_ops("r1", "d1", 0, ops(1, 4))
    await storage.save_snapshot("r1", "d1", 4, "v4")
    await storage.save_snapshot("r1", "d1", 2, "v2")
    loaded = await storage.load_document("r1", "d1")
    assert (loaded.snapshot_revision, loaded.snapshot_text) == (4, "v4")


async def test_snapshot_beyond_head_raises_revision_conflict(storage: Storage) -> None:
    """A snapshot at a revision past the durable head raises RevisionConflict."""
    await setup_doc(storage, text="v0")
    await storage.append_ops("r1", "d1", 0, ops(1, 2))
    with pytest.raises(RevisionConflict):
        await storage.save_snapshot("r1", "d1", 3, "v3")
    loaded = await storage.load_document("r1", "d1")
    assert (loaded.snapshot_revision, loaded.snapshot_text) == (0, "v0")


# ------------------------------------------------------------------------ chat


async def test_append_chat_assigns_sequential_seq_per_room(storage: Storage) -> None:
    """Chat seq numbers start at 1 and count up independently in each room."""
    await storage.create_room(room("r1"))
    await storage.create_room(room("r2"))
    first = await storage.append_chat("r1", "m1", "u1", "Ann", "hello", 10.0)
    assert first == ChatRecord("r1", 1, "m1", "u1", "Ann", "hello", 10.0)
    assert (await post(storage, "a", room_id="r2")).seq == 1
    assert (await post(storage, "b", room_id="r1")).seq == 2
    assert (await post(storage, "c", room_id="r1")).seq == 3


async def test_concurrent_chat_messages_get_distinct_seqs(storage: Storage) -> None:
    """Messages posted concurrently get the gap-free seqs 1..n."""
    await storage.create_room(room("r1"))
    records = await asyncio.gather(*(post(storage, str(i)) for i in range(50)))
    assert sorted(r.seq for r in records) == list(range(1, 51))
    history = await storage.chat_history("r1", limit=100)
    assert history == sorted(records, key=lambda r: r.seq)


async def test_chat_history_pages_backwards(storage: Storage) -> None:
    """chat_history returns the newest limit messages before before_seq, ascending."""
    await storage.create_room(room("r1"))
    for i in range(1, 8):
        await post(storage, str(i))

    def texts(records: list[ChatRecord]) -> list[str]:
        return [r.text for r in records]

    assert texts(await storage.chat_history("r1", limit=3)) == ["5", "6", "7"]
    assert texts(await storage.chat_history("r1", before_seq=5, limit=3)) == ["2", "3", "4"]
    assert texts(await storage.chat_history("r1", before_seq=2, limit=3)) == ["1"]
    assert await storage.chat_history("r1", before_seq=1) == []
    assert await storage.chat_history("r1", limit=0) == []
    assert texts(await storage.chat_history("r1")) == [str(i) for i in range(1, 8)]


async def test_chat_on_missing_room_raises_not_found(storage: Storage) -> None:
    """append_chat and chat_history on an unknown room raise NotFound."""
    with pytest.raises(NotFound):
        await post(storage, "x", room_id="nope")
    with pytest.raises(NotFound):
        await storage.chat_history("nope")


# ------------------------------------------------------------------- lifecycle


async def test_data_persists_across_close_and_reopen(
    storage: Storage, make_storage: BackendFactory, tmp_path: Path
) -> None:
    """Everything written before close is read back by a new instance on the same data."""
    await setup_doc(storage, text="base")
    await storage.touch_room("r1", 50.0)
    await storage.upsert_member(member("u1", "owner"))
    await storage.append_ops("r1", "d1", 0, ops(1, 6))
    await storage.save_snapshot("r1", "d1", 4, "snap")
    await post(storage, "persisted")
    await storage.close()

    reopened = make_storage(tmp_path)
    await reopened.open()
    try:
        assert await reopened.list_rooms() == [RoomRecord("r1", "Room r1", 1.0, 50.0)]
        assert await reopened.list_members("r1") == [member("u1", "owner")]
        loaded = await reopened.load_document("r1", "d1")
        assert loaded.record == DocumentRecord("r1", "d1", "src/d1.py", "\n", 3.0, 6)
        assert (loaded.snapshot_revision, loaded.snapshot_text, loaded.ops) == (
            4,
            "snap",
            ops(5, 6),
        )
        assert await reopened.read_ops("r1", "d1", 0) == ops(1, 6)
        assert [r.text for r in await reopened.chat_history("r1")] == ["persisted"]
        assert (await post(reopened, "next")).seq == 2
        await reopened.append_ops("r1", "d1", 6, ops(7, 7))
    finally:
        await reopened.close()


async def test_close_applies_writes_still_queued(
    storage: Storage, make_storage: BackendFactory, tmp_path: Path
) -> None:
    """Writes issued before close complete successfully and are durable after it."""
    await storage.create_room(room("r1"))
    for i in range(20):
        await storage.create_document(doc(f"d{i}"), "")
    pending = [
        asyncio.ensure_future(storage.append_ops("r1", f"d{i}", 0, ops(1, 2))) for i in range(20)
    ]
    await asyncio.sleep(0)  # let every task enqueue its write
    await storage.close()
    assert all(task.done() and task.exception() is None for task in pending)

    reopened = make_storage(tmp_path)
    await reopened.open()
    try:
        for i in range(20):
            assert await reopened.read_ops("r1", f"d{i}", 0) == ops(1, 2)
    finally:
        await reopened.close()


async def test_close_is_idempotent_and_rejects_later_calls(storage: Storage) -> None:
    """close may be called repeatedly, concurrently too; later operations raise StorageError."""
    await storage.create_room(room("r1"))
    await asyncio.gather(storage.close(), storage.close())
    await storage.close()
    with pytest.raises(StorageError):
        await storage.create_room(room("r2"))
    with pytest.raises(StorageError):
        await storage.get_room("r1")
