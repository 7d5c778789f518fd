"""Background jobs: long work answered with 202 and a job, done by the workers chunk by chunk (see
imail.models.job)."""
