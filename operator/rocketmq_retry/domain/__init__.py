"""Pure domain layer: RetryPolicy spec, retry-ladder math, desired-vs-actual diffing, conflicts and conditions.

Nothing in this package does I/O; the reconciler and the kopf handlers feed it plain data and act on its answers.
"""
