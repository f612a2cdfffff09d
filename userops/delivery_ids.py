"""Ids shared by `userops deliver` and the sample-data generator (no other imports, so the
generator can use them without loading the delivery code)."""

from __future__ import annotations

from collections.abc import Sequence


def message_id(audience_id: str, delivery_date: str, channel: str, user_id: str) -> str:
    """The id of the one message a user gets from an audience, channel and day. Receipts carry
    it back (deliveries.message_id), so it links a receipt to the send."""
    return f"{audience_id}:{delivery_date}:{channel}:{user_id}"


def message_ids(
    audience_id: str, dates: Sequence[str], channel: str, user_ids: Sequence[str]
) -> list[str]:
    return [message_id(audience_id, d, channel, u) for d, u in zip(dates, user_ids, strict=True)]


def idempotency_key(
    audience_id: str, delivery_date: str, channel: str, destination_id: str, batch_number: int
) -> str:
    """One key per (audience, date, batch) and destination: a receiver that sees the key again
    (a resend after a crash between its answer and our log write) drops the copy."""
    return f"userops:{audience_id}:{delivery_date}:{channel}:{destination_id}:{batch_number:05d}"
