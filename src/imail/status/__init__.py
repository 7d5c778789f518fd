"""Liveness and component health, public and cached."""
