"""The limits the server enforces (protocol.md §10), in one place."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Every limit a client can run into; the defaults are the documented ones."""

    max_message_bytes: int = 4 * 1024 * 1024
    max_document_length: int = 8 * 1024 * 1024
    max_chat_length: int = 8192
    requests_per_second: float = 200.0
    request_burst: int = 400
    refusals_before_close: int = 10
    presence_per_second: float = 20.0
    max_output_buffer: int = 16 * 1024 * 1024
    heartbeat_seconds: float = 20.0
    max_lag: int = 2048
    snapshot_every: int = 500

    def to_json(self) -> dict[str, float | int]:
        """The part of the limits a client is told in ``initialize``."""
        return {
            "maxMessageBytes": self.max_message_bytes,
            "maxDocumentLength": self.max_document_length,
            "maxChatLength": self.max_chat_length,
            "requestsPerSecond": self.requests_per_second,
            "presencePerSecond": self.presence_per_second,
        }


class TokenBucket:
    """A rate limiter: ``rate`` tokens a second, at most ``burst`` saved up.

    The caller passes the time in, so the bucket itself has no clock.
    """

    __slots__ = ("burst", "rate", "tokens", "updated")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = now

    def take(self, now: float) -> bool:
        """Spend one token if there is one."""
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def retry_after(self) -> float:
        """Seconds until the next token."""
        return max(0.0, (1.0 - self.tokens) / self.rate)
