"""What every verb of `rocketmq-retry` shares, the operator's own and those of the lab and chaos: the console on
stderr and the way known failures end a verb. A module of its own so that a verb module can use it while
`rocketmq_retry.cli` registers that verb."""

import sys
from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar

from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")
stderr = Console(stderr=True)


def friendly_errors(*, missing: tuple[type[Exception], ...] = ()) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Known failures of a verb become one readable message and an exit code, not a traceback: `missing` (something
    the user must install) exits 2, any other RuntimeError or TimeoutError 1. For the verbs of every distribution,
    so that they all fail alike."""

    def decorate(command: Callable[P, R]) -> Callable[P, R]:
        @wraps(command)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return command(*args, **kwargs)
            except missing as absent:
                stderr.print(f"[bold red]missing prerequisite:[/] {absent}", highlight=False, soft_wrap=True)
                sys.exit(2)
            except (TimeoutError, RuntimeError) as failure:
                stderr.print(f"[bold red]error:[/] {failure}", highlight=False, soft_wrap=True)
                sys.exit(1)

        return wrapper

    return decorate
