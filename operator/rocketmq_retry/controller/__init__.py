"""The kopf operator for RetryPolicy objects: handlers, status, the drift sweep and the Kubernetes I/O they need."""

GROUP = "rocketmq-retry.io"
VERSION = "v1alpha1"
PLURAL = "retrypolicies"
KIND = "RetryPolicy"
FINALIZER = "rocketmq-retry.io/finalizer"
