"""`/v1/keys`: a workspace's API keys, listed redacted, created (shown once) and revoked."""
