"""Domain-free building blocks: ids, time, pagination, rate limiting, API versions."""
