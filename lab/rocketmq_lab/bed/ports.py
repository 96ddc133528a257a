"""Free loopback ports; RocketMQ brokers need a small block (listen-2, listen, listen+1)."""

import random
import socket
from collections.abc import Iterable

# Below Linux's default ephemeral range (32768-60999): there, any outgoing connection's local port can take a port
# between the probe and the server's bind (a broker failed with 'Address already in use' on 37428 that way).
_LOW, _HIGH = 20000, 32760


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("0.0.0.0", port))  # noqa: S104 - 4.x brokers bind the wildcard; probe it the same way
        except OSError:
            return False
    return True


def free_port(taken: Iterable[int] = ()) -> int:
    return free_block((0,), taken)


def free_block(offsets: tuple[int, ...], taken: Iterable[int] = ()) -> int:
    """A base port such that base+offset is free for every offset and not in `taken`."""
    excluded = set(taken)
    for _ in range(500):
        base = random.randrange(_LOW, _HIGH)
        wanted = [base + offset for offset in offsets]
        if not excluded.intersection(wanted) and all(_bindable(port) for port in wanted):
            return base
    raise RuntimeError(f"no free loopback port block {offsets} in {_LOW}-{_HIGH}")
