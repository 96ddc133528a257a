"""The subset of a SubscriptionGroupConfig a RetryPolicy owns, in the broker's JSON keys.

Only fields the spec sets are owned ("unspecified is not default"), so a platform-wide policy and settings made
elsewhere do not fight, and a Reset on deletion restores only what the policy had changed. `groupRetryPolicy` exists
only on 5.x brokers; a 4.x broker would silently drop it, so it is not owned there and warnings.py says so instead.
"""

import copy

from rocketmq_retry.domain.broker import DEFAULT_RETRY_MAX_TIMES, DEFAULT_RETRY_QUEUE_NUMS, BrokerLine
from rocketmq_retry.domain.jsontypes import JsonObject, JsonValue
from rocketmq_retry.domain.retry_policy import DEFAULT_GROUP_RETRY_POLICY, group_retry_policy_json
from rocketmq_retry.domain.spec import RetryPolicySpec

RETRY_MAX_TIMES = "retryMaxTimes"
RETRY_QUEUE_NUMS = "retryQueueNums"
GROUP_RETRY_POLICY = "groupRetryPolicy"
_DEFAULTS: dict[str, JsonValue] = {
    RETRY_MAX_TIMES: DEFAULT_RETRY_MAX_TIMES,
    RETRY_QUEUE_NUMS: DEFAULT_RETRY_QUEUE_NUMS,
    GROUP_RETRY_POLICY: DEFAULT_GROUP_RETRY_POLICY,
}


def owned_fields(spec: RetryPolicySpec, line: BrokerLine) -> tuple[str, ...]:
    """The group-config keys this spec sets on a broker of `line`."""
    owned = []
    if spec.max_retries is not None:
        owned.append(RETRY_MAX_TIMES)
    if spec.retry_queues is not None:
        owned.append(RETRY_QUEUE_NUMS)
    if spec.backoff is not None and line is BrokerLine.V5:
        owned.append(GROUP_RETRY_POLICY)
    return tuple(owned)


def desired_fields(spec: RetryPolicySpec, line: BrokerLine) -> JsonObject:
    """The owned fields with the values the spec asks for."""
    values: dict[str, JsonValue] = {
        RETRY_MAX_TIMES: spec.max_retries,
        RETRY_QUEUE_NUMS: spec.retry_queues,
        GROUP_RETRY_POLICY: None if spec.backoff is None else group_retry_policy_json(spec.backoff),
    }
    return {key: values[key] for key in owned_fields(spec, line)}


def reset_fields(spec: RetryPolicySpec, line: BrokerLine) -> JsonObject:
    """The owned fields with RocketMQ's defaults, written when a policy with deletionPolicy Reset goes away."""
    return {key: copy.deepcopy(_DEFAULTS[key]) for key in owned_fields(spec, line)}
