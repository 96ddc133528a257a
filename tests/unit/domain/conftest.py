"""Hypothesis settings for the domain tests: pure functions, so wall-clock deadlines only measure machine load."""

from hypothesis import settings

settings.register_profile("domain", deadline=None)
settings.load_profile("domain")
