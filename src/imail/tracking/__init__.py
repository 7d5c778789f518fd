"""Open pixel, click redirect and unsubscribe, on signed tokens, outside /v1."""
