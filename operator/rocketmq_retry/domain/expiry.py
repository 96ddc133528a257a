"""When the brokers may remove pending dead letters, and the DeadLettersExpiring condition that warns before they do.

A broker keeps messages only as long as the commit-log file that holds them: its clean-up deletes a file once the
file's last write is `fileReservedTime` hours old (MappedFileQueue.deleteExpiredFileByTime), never the file being
written, and only at its `deleteWhen` hour (04 by default), when the disk is fuller than `diskMaxUsedSpaceRatio`, or on
a manual `deleteExpiredCommitLog` (DefaultMessageStore.CleanCommitLogService; apache/rocketmq 4.9.7 and 5.x). A file
is last written no earlier than any message it holds was stored, so the oldest pending dead letter's store time plus
`fileReservedTime` is the earliest it can go: a lower bound, broken only when the disk passes the forced-clean ratio
(85 % by default, with cleanFileForciblyEnable), where the broker deletes files whatever their age. Nothing else
tells the user: the messages vanish, and `depth` falls as if they had been handled.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from rocketmq_retry.domain.durations import format_duration, parse_duration
from rocketmq_retry.domain.timestamps import format_timestamp

DEAD_LETTERS_EXPIRING: Final = "DeadLettersExpiring"
FILE_RESERVED_TIME: Final = "fileReservedTime"  # MessageStoreConfig, hours, 72 by default
DEFAULT_EXPIRY_MARGIN: Final = "12h"
DEFAULT_EXPIRY_MARGIN_MS: Final = parse_duration(DEFAULT_EXPIRY_MARGIN)
_HOUR: Final = timedelta(hours=1)


def file_reserved_hours(config: Mapping[str, str]) -> int:
    """`fileReservedTime` of a broker's config as GET_BROKER_CONFIG reports it; ValueError when absent or not a Java
    int (the broker would not have started with one)."""
    text = config.get(FILE_RESERVED_TIME)
    if text is None:
        raise ValueError(f"the broker config has no {FILE_RESERVED_TIME}")
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{FILE_RESERVED_TIME} {text!r} is not a whole number of hours") from None


@dataclass(frozen=True)
class Retention:
    """What one master tells about the removal of its oldest pending dead letter."""

    broker: str
    oldest: datetime | None = None  # store time of its oldest pending dead letter; None when none is pending
    file_reserved_hours: int | None = None
    unknown: str | None = None  # why the removal cannot be told although dead letters may be pending

    @property
    def removal(self) -> datetime | None:
        """The earliest time the broker may remove the oldest pending dead letter (see the module's docstring)."""
        if self.oldest is None or self.file_reserved_hours is None:
            return None
        return self.oldest + timedelta(hours=self.file_reserved_hours)


def expiry_condition(margin_ms: int, retentions: Sequence[Retention], now: datetime, *,
                     error: str | None = None) -> tuple[str, str, str]:
    """(status, reason, message) of DeadLettersExpiring: True while the earliest removal of a pending dead letter is
    at most `margin_ms` away (or past), whatever the other masters say; Unknown while a master that may hold pending
    dead letters cannot tell; False otherwise.

    Messages name absolute times and whole hours, so a status is rewritten at most hourly while nothing changes.
    """
    margin = format_duration(margin_ms)
    if error is not None:
        return "Unknown", "ExpiryUnknown", f"the dead-letter queue could not be read: {error}"
    if not retentions:
        return "Unknown", "ExpiryUnknown", "the name servers report no master broker for the cluster"
    known = sorted(((removal, found) for found in retentions if (removal := found.removal) is not None),
                   key=lambda pair: pair[0])
    if known and known[0][0] - now <= timedelta(milliseconds=margin_ms):
        removal, found = known[0]
        return "True", "WithinMargin", (
            f"the oldest pending dead letter on {found.broker} may be removed from {format_timestamp(removal)} on, "
            f"{_time_left(removal - now)}, within expiryMargin {margin} (fileReservedTime "
            f"{found.file_reserved_hours} h after its store time); redrive or export it before then. A lower bound: a "
            "disk past the broker's forced-clean ratio removes files sooner")
    beyond = "" if not known else (f"the earliest known removal is {format_timestamp(known[0][0])} on "
                                   f"{known[0][1].broker}, beyond expiryMargin {margin}")
    unknown = [found for found in retentions if found.unknown is not None]
    if unknown:
        return "Unknown", "ExpiryIncomplete", "cannot tell when dead letters may be removed on " + "; ".join(
            f"{found.broker}: {found.unknown}" for found in unknown) + (f"; {beyond}" if beyond else "")
    if not known:
        return "False", "NoPendingDeadLetters", f"no dead letter is pending on the {len(retentions)} master broker(s)"
    return "False", "OutsideMargin", (f"{beyond} (the oldest pending dead letter there, fileReservedTime "
                                      f"{known[0][1].file_reserved_hours} h after its store time)")


def _time_left(left: timedelta) -> str:
    """Whole hours at least, so the message changes hourly rather than at every read."""
    if left <= timedelta(0):
        return "any time now"
    if left < _HOUR:
        return "in less than 1 h"
    return f"in {left // _HOUR} h or more"
