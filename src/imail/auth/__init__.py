"""API keys → the caller (workspace, ledger, tier, scopes)."""
