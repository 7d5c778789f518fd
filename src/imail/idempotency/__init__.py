"""`Idempotency-Key` on POST, as Stripe does: the first response is kept 24 h and replayed to the key that
made it.

A retry is a request like any other: it is authenticated, checked against the route's scopes and charged to
the rate limiter before anything is replayed (`deps.idempotent` runs after the route's guard); the record
belongs to the API key that made the first request, and its body is stored encrypted.
"""
