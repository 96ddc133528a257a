"""The reconciler: discover a cluster's masters, read each once, write only what differs, report per broker.

A thin I/O shell over the domain layer; it knows nothing of Kubernetes, so the event handlers and the drift sweep
share it.
"""
