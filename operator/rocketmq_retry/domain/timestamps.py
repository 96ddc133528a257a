"""Kubernetes timestamps (RFC 3339, UTC, whole seconds as the API server stores them)."""

from datetime import UTC, datetime


def parse_timestamp(text: str) -> datetime:
    """An aware UTC datetime from a Kubernetes timestamp such as `2024-05-01T12:00:00Z`."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp without a time zone: {text!r}")
    return moment.astimezone(UTC)


def format_timestamp(moment: datetime) -> str:
    """The API server's form of `moment` (metav1.Time has second precision)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: Kubernetes timestamps are UTC")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
