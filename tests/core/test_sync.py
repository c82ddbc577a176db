"""Targeted behaviour of DocumentSync, Document's log window and normalize_eol."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from codesphere.client.state import ClientDocument
from codesphere.core import document as document_module
from codesphere.core.changes import ContentChange, apply_changes, op_to_changes
from codesphere.core.document import Document, normalize_eol
from codesphere.core.errors import (
    InvalidChange,
    OperationError,
    PositionError,
    ResyncRequired,
    RevisionError,
    SyncError,
)
from codesphere.core.operation import TextOperation
from codesphere.core.positions import Position
from codesphere.core.sync import DocumentSync


def ins(line: int, character: int, text: str) -> ContentChange:
    """Insert ``text`` at ``(line, character)``."""
    return ContentChange(((line, character), (line, character)), text)


def rep(start: Position, end: Position, text: str) -> ContentChange:
    """Replace the range ``start``–``end`` with ``text``."""
    return ContentChange((start, end), text)


def cursor(line: int, character: int) -> tuple[Position, Position]:
    """A collapsed selection."""
    return (line, character), (line, character)


# -- committing edits ----------------------------------------------------------------------


def test_single_edit_advances_the_revision_with_an_empty_catch_up() -> None:
    """An edit on the head commits as revision + 1 and needs no catch-up."""
    sync = DocumentSync(Document("hello\n"))
    assert sync.open("a", "utf-16") == ("hello\n", 0)
    ack = sync.change("a", 0, [ins(0, 5, "!")], 12.5)
    assert (sync.doc.text, sync.doc.revision) == ("hello!\n", 1)
    assert ack.catch_up == []
    assert ack.revision == ack.entry.revision == 1
    assert ack.base_text == "hello\n"
    assert (ack.entry.author, ack.entry.timestamp) == ("a", 12.5)
    assert ack.entry.op == TextOperation.splice(6, 5, "", "!")


def test_concurrent_inserts_at_one_spot_put_the_first_committed_first() -> None:
    """Two inserts at the same place on the same base: the first committed comes first."""
    sync = DocumentSync(Document("xy\n"))
    clients = {name: ClientDocument("f", *sync.open(name, "utf-16"), "utf-16") for name in "AB"}
    edit_a = clients["A"].local_edit([ins(0, 1, "A")])
    edit_b = clients["B"].local_edit([ins(0, 1, "B")])
    ack_a = sync.change("A", edit_a.base, edit_a.changes, 1.0, edit_a.seq)
    ack_b = sync.change("B", edit_b.base, edit_b.changes, 2.0, edit_b.seq)
    assert sync.doc.text == "xABy\n"
    assert ack_a.catch_up == []
    assert ack_b.catch_up == [ins(0, 1, "A")]  # B's view "xBy" needs A's text before its own
    clients["A"].on_ack(ack_a.revision, ack_a.catch_up)
    clients["B"].on_ack(ack_b.revision, ack_b.catch_up)
    assert clients["A"].on_remote(2, op_to_changes(ack_b.entry.op, ack_b.base_text, "utf-16"))
    assert not clients["B"].on_remote(1, op_to_changes(ack_a.entry.op, "xy\n", "utf-16"))
    for client in clients.values():
        assert (client.text, client.revision) == (sync.doc.text, sync.doc.revision)


def test_catch_up_for_a_client_with_an_edit_in_flight() -> None:
    """A dropped catch-up is folded into the next acknowledgement, with later edits too."""
    sync = DocumentSync(Document("abc\n"))
    a = ClientDocument("f", *sync.open("a", "utf-16"), "utf-16")
    sync.open("b", "utf-16")
    e1 = a.local_edit([ins(0, 0, "1")])  # a: "1abc"
    e2 = a.local_edit([ins(0, 4, "2")])  # a: "1abc2", both edits based on revision 0
    sync.change("b", 0, [ins(0, 3, "B")], 1.0)  # "abcB"
    ack1 = sync.change("a", e1.base, e1.changes, 2.0, e1.seq)  # "1abcB"
    assert ack1.catch_up == [ins(0, 4, "B")]  # "1abc" -> "1abcB"
    a.on_ack(ack1.revision, ack1.catch_up)  # dropped: e2 is still unacknowledged
    assert (a.text, a.revision) == ("1abc2\n", 0)
    sync.change("b", 1, [ins(0, 0, "C")], 3.0)  # b had not seen e1: "1CabcB"
    ack2 = sync.change("a", e2.base, e2.changes, 4.0, e2.seq)
    assert sync.doc.text == "1CabcB2\n"
    assert apply_changes("1abc2\n", ack2.catch_up, "utf-16") == sync.doc.text
    a.on_ack(ack2.revision, ack2.catch_up)
    assert (a.text, a.revision) == (sync.doc.text, sync.doc.revision) == ("1CabcB2\n", 4)


# -- refused edits -------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    """An edit by client "a" that must be refused with ``error``."""

    base: int
    changes: list[ContentChange]
    error: type[SyncError]
    prepare: Callable[[DocumentSync], object] | None = None


def opened_after_two_edits() -> DocumentSync:
    """b edits twice; a opens between the two edits, at revision 1."""
    sync = DocumentSync(Document("hello 😀\nworld\n"))
    sync.open("b", "utf-16")
    sync.change("b", 0, [ins(0, 0, "B")], 1.0)  # "Bhello 😀\nworld\n"
    sync.open("a", "utf-16")
    sync.change("b", 1, [ins(1, 5, "!")], 2.0)  # "Bhello 😀\nworld!\n"
    return sync


REFUSALS = {
    "line past the last": Refusal(2, [ins(3, 0, "x")], PositionError),
    "character past the end of a line": Refusal(2, [ins(1, 7, "x")], PositionError),
    "inside a surrogate pair": Refusal(2, [ins(0, 8, "x")], PositionError),
    "bad position in a later change": Refusal(2, [ins(0, 0, "ok"), ins(9, 0, "x")], PositionError),
    "carriage return": Refusal(2, [ins(0, 0, "x\r\ny")], InvalidChange),
    "lone carriage return": Refusal(2, [ins(0, 0, "\r")], InvalidChange),
    "lone surrogate": Refusal(2, [ins(0, 0, "a\ud800")], InvalidChange),
    "reversed range": Refusal(2, [rep((1, 3), (1, 1), "")], InvalidChange),
    "revision from the future": Refusal(3, [ins(0, 0, "x")], RevisionError),
    "revision before the open": Refusal(0, [ins(0, 0, "x")], RevisionError),
    "base that never was the client's": Refusal(
        2,
        [ins(0, 0, "x")],
        RevisionError,
        # a commits at base 1 (as revision 3) and so never was at revision 2.
        prepare=lambda sync: sync.change("a", 1, [ins(0, 0, "a")], 3.0),
    ),
}


@pytest.mark.parametrize("case", REFUSALS.values(), ids=REFUSALS.keys())
def test_refused_edit_changes_nothing_and_requires_a_resync(case: Refusal) -> None:
    """A refused edit leaves text and revision alone; the client must re-open to edit again."""
    sync = opened_after_two_edits()
    if case.prepare is not None:
        case.prepare(sync)
    before = (sync.doc.text, sync.doc.revision)
    with pytest.raises(case.error):
        sync.change("a", case.base, case.changes, 9.0)
    assert (sync.doc.text, sync.doc.revision) == before
    for base in (case.base, sync.doc.revision):
        with pytest.raises(ResyncRequired):
            sync.change("a", base, [ins(0, 0, "z")], 9.0)
    assert (sync.doc.text, sync.doc.revision) == before
    text, revision = sync.open("a", "utf-16")
    assert (text, revision) == before
    ack = sync.change("a", revision, [ins(0, 0, "z")], 9.0)
    assert (sync.doc.text, ack.revision) == ("z" + text, revision + 1)


def test_a_refused_edit_does_not_block_other_clients() -> None:
    """Only the client whose edit was refused has to resync."""
    sync = opened_after_two_edits()
    with pytest.raises(PositionError):
        sync.change("a", 2, [ins(7, 0, "x")], 9.0)
    sync.change("b", 2, [ins(0, 0, "b")], 9.0)
    assert sync.doc.text == "bBhello 😀\nworld!\n"


def test_editing_a_document_that_is_not_open_requires_a_resync() -> None:
    """An edit from a client without a bridge (never opened, or closed) is ResyncRequired."""
    sync = DocumentSync(Document("abc"))
    with pytest.raises(ResyncRequired):
        sync.change("a", 0, [ins(0, 0, "x")], 1.0)
    sync.open("a", "utf-8")
    sync.close("a")
    sync.close("a")
    assert not sync.is_open("a")
    with pytest.raises(ResyncRequired):
        sync.change("a", 0, [ins(0, 0, "x")], 1.0)
    with pytest.raises(ResyncRequired):
        sync.set_selections("a", 0, [cursor(0, 0)])
    assert (sync.doc.text, sync.doc.revision) == ("abc", 0)


def test_an_edit_lagging_by_max_lag_is_accepted() -> None:
    """An edit exactly ``max_lag`` revisions behind the head is still transformed."""
    sync = DocumentSync(Document("abc"), max_lag=3)
    sync.open("slow", "utf-8")
    sync.open("fast", "utf-8")
    for rev in range(4):
        sync.change("fast", rev, [ins(0, 0, "x")], 0.0)
    sync.change("slow", 1, [ins(0, 4, "y")], 0.0)  # after "xabc" at revision 1
    assert sync.doc.text == "xxxxabcy"


def test_an_edit_lagging_past_max_lag_requires_a_resync() -> None:
    """One revision more than ``max_lag`` behind: ResyncRequired, and again until re-open."""
    sync = DocumentSync(Document("abc"), max_lag=3)
    sync.open("slow", "utf-8")
    sync.open("fast", "utf-8")
    for rev in range(4):
        sync.change("fast", rev, [ins(0, 0, "x")], 0.0)
    with pytest.raises(ResyncRequired):
        sync.change("slow", 0, [ins(0, 0, "y")], 0.0)
    with pytest.raises(ResyncRequired):
        sync.change("slow", 4, [ins(0, 0, "y")], 0.0)
    assert (sync.doc.text, sync.doc.revision) == ("xxxxabc", 4)


def test_a_client_typing_without_pause_is_never_too_far_behind() -> None:
    """A client that always has keystrokes waiting keeps naming its old base: each ack moves it.

    Its lag is counted from its last acknowledgement, so however long it types without
    applying a catch-up, its edits are accepted and the document converges when it pauses.
    """
    sync = DocumentSync(Document("abc"), max_lag=3)
    typist = ClientDocument("f", "abc", *sync.open("typist", "utf-8")[1:], encoding="utf-8")
    sync.open("other", "utf-8")
    edit = typist.local_edit([ins(0, 0, "<")])
    for round_ in range(10):
        for _ in range(3):  # others commit max_lag revisions while the edit is in flight
            rev = sync.doc.revision
            sync.change("other", rev, [ins(0, len(sync.doc.text), "x")], 0.0)
        ack = sync.change("typist", edit.base, edit.changes, 0.0, edit.seq)
        typist.type([ins(0, 0, str(round_))])  # typed before the answer came
        typist.on_ack(ack.revision, ack.catch_up)
        assert typist.revision == 0  # the catch-up was dropped: keystrokes were waiting
        edit = typist.take_unsent()
        assert edit is not None
    ack = sync.change("typist", edit.base, edit.changes, 0.0, edit.seq)
    typist.on_ack(ack.revision, ack.catch_up)
    assert (typist.text, typist.revision) == (sync.doc.text, sync.doc.revision)
    assert sync.doc.text == "9876543210<abc" + "x" * 30


def test_max_lag_never_exceeds_the_document_window() -> None:
    """A lag the in-memory log cannot serve is refused with ResyncRequired, not a crash."""
    sync = DocumentSync(Document("abc", window=2), max_lag=100)
    sync.open("slow", "utf-8")
    sync.open("fast", "utf-8")
    for rev in range(6):
        sync.change("fast", rev, [ins(0, 0, "x")], 0.0)
    with pytest.raises(ResyncRequired):
        sync.change("slow", 0, [ins(0, 0, "y")], 0.0)


# -- selections ----------------------------------------------------------------------------


def test_set_selections_maps_positions_through_unseen_edits() -> None:
    """Selections named at an older revision are converted in that text and moved to head."""
    sync = DocumentSync(Document("héllo 😀 world\n"))
    sync.open("a", "utf-16")
    sync.open("b", "utf-8")
    sync.change("b", 0, [ins(0, 0, "XYZ ")], 1.0)
    # "world" in a's view at revision 0: utf-16 units 9-14, code points 8-13.
    assert sync.set_selections("a", 0, [((0, 9), (0, 14))]) == [(12, 17)]
    assert sync.selections_at_head("a", "utf-8") == [((0, 16), (0, 21))]
    assert sync.selections_at_head("a", "utf-16") == [((0, 13), (0, 18))]
    assert sync.selections_at_head("a", "utf-32") == [((0, 12), (0, 17))]


def test_set_selections_refuses_bad_positions_and_records_nothing() -> None:
    """A bad position or revision raises and keeps the previous selections; edits still work."""
    sync = DocumentSync(Document("a😀b\nc\n"))
    sync.open("a", "utf-16")
    sync.set_selections("a", 0, [((0, 0), (0, 1))])
    bad: list[tuple[int, list[tuple[Position, Position]], type[SyncError]]] = [
        (0, [cursor(0, 2)], PositionError),  # inside the surrogate pair
        (0, [cursor(0, 0), cursor(5, 0)], PositionError),  # line past the last
        (0, [((1, 0), (1, 2))], PositionError),  # past the end of the line
        (0, [((-1, 0), (0, 0))], PositionError),
        (1, [cursor(0, 0)], RevisionError),  # from the future
    ]
    for base, selections, error in bad:
        with pytest.raises(error):
            sync.set_selections("a", base, selections)
        assert sync.selections_at_head("a", "utf-16") == [((0, 0), (0, 1))]
    sync.change("a", 0, [ins(0, 0, "x")], 1.0)
    assert sync.doc.text == "xa😀b\nc\n"


def test_selections_move_when_the_document_is_edited() -> None:
    """Others' edits shift selections; text typed at a cursor goes after it only for its owner."""
    sync = DocumentSync(Document("abcdef\n"))
    sync.open("a", "utf-32")
    sync.open("b", "utf-32")
    sync.set_selections("a", 0, [cursor(0, 3), ((0, 4), (0, 6))])

    def selections() -> list[tuple[int, int]]:
        return [(s[1], e[1]) for s, e in sync.selections_at_head("a", "utf-32")]

    sync.change("b", 0, [ins(0, 0, "XY")], 1.0)  # before both selections
    assert selections() == [(5, 5), (6, 8)]
    sync.change("b", 1, [ins(0, 5, "_")], 2.0)  # b types at a's cursor: it stays in front
    assert selections() == [(5, 5), (7, 9)]
    sync.change("a", 2, [ins(0, 5, "!")], 3.0)  # a types at its own cursor: it moves past
    assert selections() == [(6, 6), (8, 10)]
    sync.change("b", 3, [rep((0, 7), (0, 10), "")], 4.0)  # deletes around the selection
    assert selections() == [(6, 6), (7, 7)]
    assert sync.doc.text == "XYabc!_\n"
    assert sync.selections_at_head("nobody", "utf-8") == []


def test_selections_survive_a_reopen() -> None:
    """Re-opening keeps the client's selections."""
    sync = DocumentSync(Document("abc"))
    sync.open("a", "utf-8")
    sync.set_selections("a", 0, [cursor(0, 2)])
    sync.open("a", "utf-8")
    assert sync.selections_at_head("a", "utf-8") == [((0, 2), (0, 2))]


@pytest.mark.parametrize("at", [0, 2, 3, 5])
def test_selection_sent_before_or_after_an_edit_arrives_ends_up_the_same(at: int) -> None:
    """A selection named at revision 0 lands where it would had it arrived before b's edit."""
    results = []
    for selection_first in (True, False):
        sync = DocumentSync(Document("abcdef\n"))
        sync.open("a", "utf-8")
        sync.open("b", "utf-8")
        if selection_first:
            sync.set_selections("a", 0, [cursor(0, 3), ((0, 1), (0, 3))])
        sync.change("b", 0, [ins(0, at, "XY")], 1.0)
        if not selection_first:
            sync.set_selections("a", 0, [cursor(0, 3), ((0, 1), (0, 3))])
        results.append(sync.selections_at_head("a", "utf-8"))
    assert results[0] == results[1]
    assert results[1][0][0] == results[1][0][1]  # a cursor stays a cursor


# -- the document log ----------------------------------------------------------------------


def test_text_at_rebuilds_every_revision_in_the_window() -> None:
    """text_at(r) is the text as it was at each revision still in memory."""
    doc = Document("fn main() {}\n", revision=5)
    texts = {5: doc.text}
    edits = [(3, "main", "run"), (0, "", "pub "), (14, "", " 😀 "), (0, "pub fn", "")]
    for offset, deleted, inserted in edits:
        assert doc.text[offset : offset + len(deleted)] == deleted
        doc.commit(TextOperation.splice(len(doc.text), offset, deleted, inserted), "a", 0.0)
        texts[doc.revision] = doc.text
    assert doc.text == " run() { 😀 }\n"
    for revision, text in texts.items():
        assert doc.text_at(revision) == text
    assert [e.revision for e in doc.entries_since(6)] == [7, 8, 9]
    with pytest.raises(ResyncRequired):
        doc.text_at(4)


def test_text_at_beyond_the_window_requires_a_resync() -> None:
    """At least ``window`` revisions stay available; older ones raise ResyncRequired."""
    window = 3
    doc = Document("", window=window)
    texts = [doc.text]
    for i in range(20):
        doc.commit(TextOperation.splice(len(doc.text), 0, "", str(i % 10)), "a", float(i))
        texts.append(doc.text)
        assert doc.revision - doc.oldest_available >= min(window, doc.revision)
        for revision in range(doc.oldest_available, doc.revision + 1):
            assert doc.text_at(revision) == texts[revision]
    assert doc.oldest_available > 0
    with pytest.raises(ResyncRequired):
        doc.text_at(doc.oldest_available - 1)
    with pytest.raises(ResyncRequired):
        doc.ops_since(0)


def test_document_refuses_carriage_returns() -> None:
    """A Document is built only from text that already uses \\n line ends."""
    with pytest.raises(OperationError):
        Document("a\r\nb")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("", ("", "\n")),
        ("abc", ("abc", "\n")),
        ("a\nb\n", ("a\nb\n", "\n")),
        ("\r\n", ("\n", "\r\n")),
        ("a\r\nb\r\nc\n", ("a\nb\nc\n", "\r\n")),  # CRLF majority
        ("a\nb\nc\r\n", ("a\nb\nc\n", "\n")),  # LF majority
        ("a\r\nb\n", ("a\nb\n", "\n")),  # a tie keeps \n
        ("a\rb\rc", ("a\nb\nc", "\n")),  # lone CRs become \n
        ("a\r\r\nb", ("a\n\nb", "\r\n")),  # a lone CR, then a CRLF
        ("x\n\r", ("x\n\n", "\n")),  # LF then a lone CR is not a CRLF
    ],
)
def test_normalize_eol(raw: str, expected: tuple[str, str]) -> None:
    """normalize_eol gives \\n-only text and the line-end style most lines used."""
    assert normalize_eol(raw) == expected
    assert "\r" not in normalize_eol(raw)[0]


def test_text_at_keeps_recent_texts_exact() -> None:
    """Texts kept for text_at stay exact through commits, refused commits and a growing text."""
    rng = random.Random(11)
    doc = Document("start\n", window=40)
    texts = {0: doc.text}
    for step in range(400):
        if rng.random() < 0.05:
            with pytest.raises(OperationError):  # a refused commit changes nothing
                doc.commit(TextOperation.splice(len(doc.text) + 1, 0, "", "x"), "a", 0.0)
        offset = rng.randint(0, len(doc.text))
        deleted = doc.text[offset : offset + rng.randint(0, 3)]
        inserted = rng.choice(["a", "😀", "é\n", "中文", "x" * rng.randint(0, 50)])
        doc.commit(TextOperation.splice(len(doc.text), offset, deleted, inserted), "a", 0.0)
        texts[doc.revision] = doc.text
        back = rng.randint(0, min(doc.revision - doc.oldest_available, 70))
        assert doc.text_at(doc.revision - back) == texts[doc.revision - back], step
    with pytest.raises(ResyncRequired):
        doc.text_at(doc.oldest_available - 1)


def test_text_at_keeps_no_more_texts_than_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """A big document keeps few recent texts, or none."""
    monkeypatch.setattr(document_module, "RECENT_TEXT_BUDGET", 1000)
    doc = Document("x" * 300)
    for _ in range(10):
        doc.commit(TextOperation.splice(len(doc.text), 0, "", "y"), "a", 0.0)
    assert doc.text_at(2) == "y" * 2 + "x" * 300
    for _ in range(5):
        doc.commit(TextOperation.splice(len(doc.text), 0, "", "y"), "a", 0.0)
    assert len(doc._recent) * len(doc.text) <= 1000
    doc.commit(TextOperation.splice(len(doc.text), 0, "", "z" * 2000), "a", 0.0)
    assert not doc._recent
    assert doc.text_at(doc.revision - 3) == "y" * 13 + "x" * 300
