"""The kopf operator for RetryPolicy and DeadLetterQueue objects: handlers, the reconciler's work queue, status, the
drift sweep, the master watch, redrives and the Kubernetes I/O they need."""

GROUP = "rocketmq-retry.io"
VERSION = "v1alpha1"
PLURAL = "retrypolicies"
KIND = "RetryPolicy"
DLQ_PLURAL = "deadletterqueues"
DLQ_KIND = "DeadLetterQueue"
FINALIZER = "rocketmq-retry.io/finalizer"
