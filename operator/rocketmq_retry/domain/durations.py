"""Durations as the RetryPolicy API spells them, and the broker's `messageDelayLevel` table.

Spec durations use the subset of Go/Kubernetes duration syntax that CEL's `duration()` also understands (units h, m,
s, ms; whole numbers), so the CRD can compare them in validation rules. The digit limits keep every value far below
the overflow of Go durations (about 292 years), which CEL would otherwise report as an evaluation error.
"""

import re
from typing import Final

DURATION_PATTERN: Final = r"^(?:[0-9]{1,5}h)?(?:[0-9]{1,7}m)?(?:[0-9]{1,9}s)?(?:[0-9]{1,12}ms)?$"
_DURATION = re.compile(
    r"^(?:(?P<h>[0-9]{1,5})h)?(?:(?P<m>[0-9]{1,7})m)?(?:(?P<s>[0-9]{1,9})s)?(?:(?P<ms>[0-9]{1,12})ms)?$"
)
_UNIT_MS: Final = {"h": 3_600_000, "m": 60_000, "s": 1_000, "ms": 1}

# ScheduleMessageService.parseDelayLevel: the last character is the unit, the rest a Java long.
_LEVEL_UNIT_MS: Final = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_JAVA_LONG = re.compile(r"^[+-]?[0-9]+$")
JAVA_LONG_MAX: Final = 2**63 - 1


class DurationError(ValueError):
    """A duration string the API (or the broker) does not accept."""


def parse_duration(text: str) -> int:
    """Milliseconds of a spec duration such as `500ms`, `10s`, `1m30s` or `2h`."""
    match = _DURATION.fullmatch(text)
    if not text or match is None:
        raise DurationError(f"{text!r} is not a duration: use whole numbers with units h, m, s, ms, e.g. 10s or 1m30s")
    return sum(int(value) * _UNIT_MS[unit] for unit, value in match.groupdict().items() if value is not None)


def format_duration(ms: int) -> str:
    """The shortest spec duration for `ms` (`1m40s`, `500ms`, `0s`); hours are the largest unit, as in Go."""
    if ms < 0:
        raise ValueError(f"negative duration: {ms} ms")
    if ms == 0:
        return "0s"
    parts = []
    for unit, size in _UNIT_MS.items():
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_delay_levels(text: str) -> tuple[int, ...]:
    """The broker's delay levels in milliseconds, level 1 first, accepting exactly what the broker accepts.

    The broker splits on single spaces (Java `split(" ")`, which drops trailing empty strings, so trailing spaces pass
    but double or leading spaces fail), takes the last character as the unit (s, m, h, d; no `ms`) and the rest as a
    Java long. A string the broker rejects stops it from starting, so an error here means the text did not come from
    a running broker. Values the broker would take but that make no sense as delays (negative, or overflowing a
    long when multiplied by the unit) and an all-space string (which leaves the broker without levels) are errors too.
    """
    tokens = text.split(" ")
    while tokens and not tokens[-1]:
        tokens.pop()
    if not tokens:
        raise DurationError(f"messageDelayLevel {text!r} has no delay levels")
    levels = []
    for level, token in enumerate(tokens, start=1):
        number, unit = token[:-1], token[-1:]
        if unit not in _LEVEL_UNIT_MS or not _JAVA_LONG.fullmatch(number):
            raise DurationError(
                f"messageDelayLevel {text!r}: level {level} ({token!r}) is not a whole number followed by s, m, h or d"
                " (levels are separated by single spaces)"
            )
        value = int(number) * _LEVEL_UNIT_MS[unit]
        if value < 0 or value > JAVA_LONG_MAX:
            raise DurationError(f"messageDelayLevel {text!r}: level {level} ({token!r}) is not a usable delay")
        levels.append(value)
    return tuple(levels)
