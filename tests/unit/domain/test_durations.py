import pytest
from hypothesis import given
from hypothesis import strategies as st

from rocketmq_retry.domain.broker import DEFAULT_CUSTOMIZED_NEXT_MS, DEFAULT_MESSAGE_DELAY_LEVEL
from rocketmq_retry.domain.durations import (
    JAVA_LONG_MAX,
    DurationError,
    format_duration,
    parse_delay_levels,
    parse_duration,
)

# Largest value every unit of the grammar can spell: 99999h 9999999m 999999999s 999999999999ms.
GRAMMAR_MAX_MS = 99_999 * 3_600_000


@pytest.mark.parametrize(
    ("text", "ms"),
    [("0s", 0), ("500ms", 500), ("10s", 10_000), ("2m", 120_000), ("1h", 3_600_000), ("1m30s", 90_000),
     ("1h0m5s250ms", 3_605_250), ("90m", 5_400_000), ("1500ms", 1_500), ("24h", 86_400_000)],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize(
    "text",
    ["", "10", "s", "1d", "1.5s", "-1s", "1s1m", "1m1m", "10 s", " 10s", "1us", "１s", "100000h", "1S", "5mss"],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(DurationError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("ms", "text"),
    [(0, "0s"), (500, "500ms"), (1_000, "1s"), (100_000, "1m40s"), (3_600_000, "1h"), (90_061_001, "25h1m1s1ms")],
)
def test_format_duration(ms: int, text: str) -> None:
    assert format_duration(ms) == text


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(-1)


@given(st.integers(min_value=0, max_value=GRAMMAR_MAX_MS))
def test_format_then_parse_round_trips(ms: int) -> None:
    assert parse_duration(format_duration(ms)) == ms


@given(st.integers(min_value=0, max_value=99_999), st.integers(min_value=0, max_value=59),
       st.integers(min_value=0, max_value=59), st.integers(min_value=0, max_value=999))
def test_parse_accepts_what_format_would_write(hours: int, minutes: int, seconds: int, millis: int) -> None:
    text = f"{hours}h{minutes}m{seconds}s{millis}ms"
    assert parse_duration(text) == ((hours * 60 + minutes) * 60 + seconds) * 1_000 + millis


def test_default_delay_levels_match_the_default_customized_policy() -> None:
    assert parse_delay_levels(DEFAULT_MESSAGE_DELAY_LEVEL) == DEFAULT_CUSTOMIZED_NEXT_MS


@pytest.mark.parametrize(
    ("text", "levels"),
    [("1s", (1_000,)), ("1s 2m 3h 1d", (1_000, 120_000, 10_800_000, 86_400_000)),
     ("1s 5s  ", (1_000, 5_000)),  # Java's split drops trailing empty strings
     ("+5s", (5_000,)), ("0s 007s", (0, 7_000))],
)
def test_parse_delay_levels_accepts_what_the_broker_accepts(text: str, levels: tuple[int, ...]) -> None:
    assert parse_delay_levels(text) == levels


@pytest.mark.parametrize(
    "text",
    ["1s  5s", " 1s", "1s\t5s", "500ms", "1.5s", "1w", "s", "1", "1S", "1s,5s", "1s 5s\n"],
)
def test_parse_delay_levels_rejects_what_stops_a_broker(text: str) -> None:
    with pytest.raises(DurationError, match="single spaces"):
        parse_delay_levels(text)


@pytest.mark.parametrize(
    ("text", "match"),
    [("", "no delay levels"), ("   ", "no delay levels"), ("-1s", "not a usable delay"),
     (f"{JAVA_LONG_MAX}d", "not a usable delay"), (f"{JAVA_LONG_MAX + 1}s", "not a usable delay")],
)
def test_parse_delay_levels_rejects_meaningless_tables(text: str, match: str) -> None:
    with pytest.raises(DurationError, match=match):
        parse_delay_levels(text)
