"""Chaos experiments on the local bed: its injector, the named experiments of `rocketmq-retry chaos run`, the Java
probes compiled against the bed's jars, and the Chaos Toolkit provider of chaos/experiments/*.json."""
