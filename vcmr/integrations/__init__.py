"""Adapters that put vcmr models into other frameworks (MARBLE); each imports nothing of its framework."""
