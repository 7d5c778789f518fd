"""Deprecations in use: response headers, usage per key, monthly warnings (see kit.versions for the
registry)."""
