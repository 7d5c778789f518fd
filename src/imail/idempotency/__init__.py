"""`Idempotency-Key` on POST, as Stripe does: the first response is kept 24 h and replayed."""
