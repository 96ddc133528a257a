"""Choosing broker pods to delete, pure: selectors, label checks, modes."""

import random

import pytest

from rocketmq_chaos.pods import Mode, choose, matches, parse_selector


def test_selectors_are_exact_labels_and_never_empty() -> None:
    assert parse_selector("app=rocketmq, role=broker") == {"app": "rocketmq", "role": "broker"}
    for bad in ("", " , ", "app", "app==x", "app!=x"):
        with pytest.raises(ValueError, match=r"key=value|empty selector"):
            parse_selector(bad)


def test_a_pod_matches_only_with_every_label() -> None:
    wanted = {"app": "rocketmq", "role": "broker"}
    assert matches({"app": "rocketmq", "role": "broker", "zone": "a"}, wanted)
    assert not matches({"app": "rocketmq"}, wanted)
    assert not matches(None, wanted)


def test_modes_pick_one_all_or_a_fixed_count() -> None:
    pods = ["b-0", "b-1", "b-2"]
    rng = random.Random(3)
    assert len(choose(pods, Mode.ONE, 0, rng)) == 1
    assert choose(pods, Mode.ALL, 0, rng) == pods
    assert len(choose(pods, Mode.FIXED, 2, rng)) == 2
    assert choose(pods, Mode.FIXED, 9, rng) == pods
    assert choose([], Mode.ONE, 1, rng) == []
    with pytest.raises(ValueError, match="at least 1"):
        choose(pods, Mode.FIXED, 0, rng)
