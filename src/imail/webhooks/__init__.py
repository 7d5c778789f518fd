"""Webhooks: endpoints, the fan-out of events into deliveries, and signed, retried delivery."""
