"""The one place the lab finds the project's own files: CRDs, chart, examples, kind-config.yaml, Dockerfiles.

The lab works on a checkout of the project rather than on copies packaged with it. The kind lab builds the operator
and chaos images from the checkout's Dockerfiles and sources, so what it runs is what the repository holds; the CRDs,
the chart and the examples it applies are the very files users and the tests apply. Package-data copies could drift
from them (and an editable install, the lab's only install, carries no copies at all). Its own helper files (Java
and Go sources, RocketMQ's logging conf, the kind node-routes manifest) do ship inside the package and are found
next to their modules.

The checkout is, in this order:

- `$ROCKETMQ_RETRY_CHECKOUT`, when set: an explicit choice (a second checkout, a lab installed from a wheel);
- the directory the lab was installed from, as the installer recorded it in the distribution's `direct_url.json`
  (PEP 610; pip and uv both write it): `make setup` installs the lab editable from `<checkout>/lab`.
"""

import json
import os
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlparse

ENV_CHECKOUT: Final = "ROCKETMQ_RETRY_CHECKOUT"
DISTRIBUTION: Final = "rocketmq-retry-lab"


class NoCheckout(RuntimeError):
    """The lab cannot tell which checkout of the project to work on."""


@dataclass(frozen=True)
class Checkout:
    """A checkout of the project: the paths the lab reads, named once."""

    root: Path

    @property
    def crds(self) -> Path:
        return self.root / "crds"

    @property
    def chart(self) -> Path:
        return self.root / "charts" / "rocketmq-retry-operator"

    @property
    def examples(self) -> Path:
        return self.root / "examples"

    @property
    def sample_policy(self) -> Path:
        """The README's `orders` RetryPolicy, which the demo and the kind lab apply and expect Ready."""
        return self.examples / "retrypolicy-orders.yaml"

    @property
    def kind_config(self) -> Path:
        return self.root / "kind-config.yaml"

    @property
    def chaos_manifests(self) -> Path:
        return self.root / "chaos" / "manifests"

    def check(self, source: str) -> "Checkout":
        """Self, if it holds what the lab reads; NoCheckout naming `source` (where the path came from) otherwise."""
        missing = [path.name for path in (self.crds, self.chart, self.kind_config) if not path.exists()]
        if missing:
            raise NoCheckout(f"{self.root} ({source}) is not a checkout of rocketmq-retry-operator: no "
                             f"{', '.join(missing)}; set {ENV_CHECKOUT} to one")
        return self


def _installed_from() -> Path:
    """The checkout whose `lab/` directory the lab distribution was installed from (its PEP 610 record)."""
    record = metadata.distribution(DISTRIBUTION).read_text("direct_url.json")
    url = urlparse(json.loads(record)["url"]) if record else None
    if url is None or url.scheme != "file":
        raise NoCheckout(f"{DISTRIBUTION} was not installed from a directory: install it from a checkout "
                         f"(`pip install -e lab/`) or set {ENV_CHECKOUT}")
    return Path(unquote(url.path)).parent


@cache
def checkout() -> Checkout:
    """The checkout the lab works on (see the module's docstring); NoCheckout when there is none."""
    if explicit := os.environ.get(ENV_CHECKOUT):
        return Checkout(Path(explicit).resolve()).check(f"${ENV_CHECKOUT}")
    return Checkout(_installed_from()).check(f"where {DISTRIBUTION} was installed from")
