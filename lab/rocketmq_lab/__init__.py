"""The lab of rocketmq-retry-operator: the local test bed, the demo, chaos on the local bed and the kind lab.

Not the operator's: its image installs none of this. The lab adds its verbs to `rocketmq-retry` (cli.py).
"""
