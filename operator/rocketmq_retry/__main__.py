"""`python -m rocketmq_retry` is the `rocketmq-retry` command."""

from .cli import main

main()
