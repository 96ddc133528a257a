"""The reconciler: discover a cluster's masters, read each (or reuse a read of the last seconds for event passes),
write only what differs in one batch, report per broker; one pass at a time per cluster, with concurrent callers
folded into it.

A thin I/O shell over the domain layer; it knows nothing of Kubernetes, so the event handlers and the drift sweep
share it.
"""
