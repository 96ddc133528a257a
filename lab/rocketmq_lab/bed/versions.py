"""Every pinned version of the test bed, in one place."""

from typing import Final

# Maven Central has no 4.9.8 broker or name server (only client/tools), so 4.9.7 is the newest 4.x bed.
ROCKETMQ_5: Final = "5.5.0"
ROCKETMQ_4: Final = "4.9.7"
ROCKETMQ_VERSIONS: Final = (ROCKETMQ_5, ROCKETMQ_4)

KUBERNETES: Final = "v1.36.3"
ETCD: Final = "v3.6.16"
HELM: Final = "v3.22.0"
KIND: Final = "v0.33.0"
COREDNS: Final = "v1.14.2"  # what kubeadm v1.36 deploys (cmd/kubeadm/app/constants: CoreDNSVersion)
