"""The REST API's request and response bodies; their JSON Schemas go into the OpenAPI document.

Times are milliseconds since the Unix epoch and positions are LSP positions in UTF-16, as in
the protocol, so that a client can use one set of types for both.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from codesphere.protocol import codec
from codesphere.protocol.errors import RpcError

Role = Literal["owner", "editor", "viewer"]


def _workspace_path(value: str) -> str:
    try:
        return codec.path({"path": value})
    except RpcError as exc:
        raise ValueError(exc.message.replace("'path' ", "")) from None


WorkspacePath = Annotated[str, AfterValidator(_workspace_path)]


class Body(BaseModel):
    """A request body: unknown fields are refused, so that a typo is not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class FileIn(Body):
    """A file to put in a new room."""

    path: WorkspacePath = Field(description="Relative, '/'-separated path", examples=["main.py"])
    text: str = Field(default="", max_length=8 * 1024 * 1024)


class RoomCreate(Body):
    """``POST /api/rooms``."""

    name: str = Field(min_length=1, max_length=100, examples=["Pairing on the parser"])
    files: list[FileIn] = Field(default_factory=list, max_length=1000)


class InviteCreate(Body):
    """``POST /api/rooms/{room_id}/invites``."""

    role: Role
    expiresInSeconds: int = Field(default=7 * 86400, ge=60, le=365 * 86400)
    maxUses: int | None = Field(default=None, ge=1, le=1_000_000)


class Invite(BaseModel):
    """An invitation to a room with a role."""

    inviteId: str
    role: Role
    createdAt: int
    expiresAt: int
    maxUses: int | None
    uses: int
    revoked: bool
    token: str | None = Field(description="The invite token; null once revoked")
    url: str | None = Field(description="A link that opens the room in a browser with the token")


class RoomCreated(BaseModel):
    """The answer to creating a room."""

    roomId: str
    name: str
    ownerToken: str = Field(description="A member token of the room's owner (you)")
    invites: dict[str, Invite] = Field(description="A fresh invite per role: editor, viewer")


class RoomSummary(BaseModel):
    """A room in a list."""

    roomId: str
    name: str
    role: Role = Field(description="Your role in it")
    createdAt: int
    updatedAt: int


class RoomList(BaseModel):
    rooms: list[RoomSummary]


class Member(BaseModel):
    memberId: str
    name: str
    color: str
    role: Role
    online: bool


class MemberList(BaseModel):
    members: list[Member]


class DocumentInfo(BaseModel):
    documentId: str
    path: str
    revision: int
    eol: Literal["\n", "\r\n"]


class DocumentList(BaseModel):
    documents: list[DocumentInfo]


class RoomDetail(BaseModel):
    """A room with who is in it and what it holds."""

    roomId: str
    name: str
    role: Role = Field(description="Your role in it")
    createdAt: int
    updatedAt: int
    members: list[Member]
    documents: list[DocumentInfo]


class DocumentText(BaseModel):
    documentId: str
    path: str
    revision: int
    eol: Literal["\n", "\r\n"]
    text: str = Field(description="The text at that revision, with '\\n' line ends")


class Position(BaseModel):
    line: int
    character: int = Field(description="UTF-16 code units from the start of the line")


class Range(BaseModel):
    start: Position
    end: Position


class Change(BaseModel):
    """``range`` of the text before the edit was replaced by ``text``."""

    range: Range
    text: str


class HistoryEntry(BaseModel):
    revision: int
    memberId: str
    timestamp: int
    changes: list[Change]


class HistoryPage(BaseModel):
    entries: list[HistoryEntry]
    next: int | None = Field(description="The 'after' of the next page; null on the last")


class HistoryQuery(Body):
    after: int = Field(default=0, ge=0, description="Entries after this revision")
    limit: int = Field(default=100, ge=1, le=500)


class TextQuery(Body):
    revision: int | None = Field(default=None, ge=0, description="Default: the head")


class ChatMessage(BaseModel):
    id: str
    seq: int
    memberId: str
    name: str
    text: str
    timestamp: int


class ChatPage(BaseModel):
    messages: list[ChatMessage] = Field(description="Oldest first")
    next: int | None = Field(description="The 'before' of the next (older) page; null at the start")


class ChatQuery(Body):
    before: int | None = Field(default=None, ge=1, description="Messages before this seq")
    limit: int = Field(default=50, ge=1, le=200)


class InviteList(BaseModel):
    invites: list[Invite]


class StorageState(BaseModel):
    backend: str
    ok: bool
    latencyMs: float
    error: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    storage: StorageState


class Health(BaseModel):
    status: Literal["ok"]


class ErrorDetail(BaseModel):
    code: int = Field(description="The protocol's error code (protocol.md §9)")
    name: str = Field(description="The protocol's name for the code", examples=["Forbidden"])
    message: str = Field(description="What went wrong, for a person")
    details: list[str] | None = None


class Error(BaseModel):
    error: ErrorDetail
