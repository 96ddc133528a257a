"""Every pinned version of the test bed, in one place."""

from typing import Final

# Maven Central has no 4.9.8 broker or name server (only client/tools), so 4.9.7 is the newest 4.x bed.
ROCKETMQ_5: Final = "5.5.0"
ROCKETMQ_4: Final = "4.9.7"
ROCKETMQ_VERSIONS: Final = (ROCKETMQ_5, ROCKETMQ_4)
# Older 5.x lines, e2e'd by tests/e2e/test_versions.py only (the whole suite on four versions would overrun CI's hour).
# The newest patch of each that fully resolves on Maven Central here: 5.3.4 lacks tools, client and proxy jars; 5.1.4
# lacks only the proxy (maven.has_proxy), so its bed runs without one.
ROCKETMQ_5_1: Final = "5.1.4"
ROCKETMQ_5_3: Final = "5.3.3"
ROCKETMQ_OLDER_LINES: Final = (ROCKETMQ_5_1, ROCKETMQ_5_3)

KUBERNETES: Final = "v1.36.3"
ETCD: Final = "v3.6.16"
HELM: Final = "v3.22.0"
KIND: Final = "v0.33.0"
COREDNS: Final = "v1.14.2"  # what kubeadm v1.36 deploys (cmd/kubeadm/app/constants: CoreDNSVersion)
