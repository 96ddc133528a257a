"""Kubernetes API for Apache RocketMQ consumer retries and dead letters."""
