"""Helpers every test tier shares: waiting for a condition (``waiting``) and reserving loopback
ports (``ports``). Import them as ``from tests.support.<module> import ...``."""
