"""Desired vs actual subscription-group config on one broker, and the full config to write.

An update replaces the broker's whole SubscriptionGroupConfig (fields missing from the body take Java defaults), so
the body to write is the broker's actual config, unknown fields included, with only the owned fields changed.
Exception: on 5.x the broker merges `attributes` itself and rejects stored keys sent back without a +/- prefix, so
the body always carries an empty `attributes` map, which leaves the stored attributes as they are.
"""

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from rocketmq_retry.domain.broker import BrokerLine, default_group_config
from rocketmq_retry.domain.desired import GROUP_RETRY_POLICY
from rocketmq_retry.domain.jsontypes import JsonObject, JsonValue
from rocketmq_retry.domain.retry_policy import same_group_retry_policy

ATTRIBUTES = "attributes"


@dataclass(frozen=True)
class FieldChange:
    field: str
    actual: JsonValue  # None when the broker does not have the field
    desired: JsonValue


@dataclass(frozen=True)
class GroupPlan:
    """What to do to one group on one broker."""

    group: str
    changes: tuple[FieldChange, ...]
    creates: bool  # the group does not exist on the broker yet
    base: Mapping[str, JsonValue]  # the group as stored, or the defaults it would be created with
    desired: Mapping[str, JsonValue]

    @property
    def needs_write(self) -> bool:
        return self.creates or bool(self.changes)

    @cached_property
    def config(self) -> JsonObject:
        """The complete body for UPDATE_AND_CREATE_SUBSCRIPTIONGROUP, built when asked: a drift sweep plans every
        group of every policy, and most need no write."""
        config = copy.deepcopy(dict(self.base)) | copy.deepcopy(dict(self.desired))
        config["groupName"] = self.group
        if ATTRIBUTES in config:
            config[ATTRIBUTES] = {}
        return config


def plan_group(group: str, actual: Mapping[str, JsonValue] | None, desired: Mapping[str, JsonValue],
               line: BrokerLine) -> GroupPlan:
    """Compare `desired` (owned fields) with the broker's `actual` config (None: the group does not exist).

    A missing group is compared with, and created from, the defaults a broker of `line` would give it, but only when
    the policy owns some field: a policy that sets nothing must not create groups.
    """
    base = default_group_config(group, line) if actual is None else actual
    changes = tuple(FieldChange(key, base.get(key), value) for key, value in desired.items()
                    if not _same(key, base.get(key), value))
    return GroupPlan(group, changes, creates=actual is None and bool(desired), base=base, desired=desired)


def _same(key: str, actual: JsonValue, desired: JsonValue) -> bool:
    if key == GROUP_RETRY_POLICY:
        return same_group_retry_policy(actual, desired)
    # JSON true is not the number 1, although Python compares them equal.
    return actual == desired and isinstance(actual, bool) == isinstance(desired, bool)
