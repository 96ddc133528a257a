"""The local test bed: real RocketMQ brokers and a real Kubernetes API server as plain processes.

Everything here is built from package registries (Maven Central, the Go module proxy) into a
per-user cache keyed by version, so a fresh machine needs only Java, Maven and Go.
"""
