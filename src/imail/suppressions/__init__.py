"""The suppression list: addresses and domains a workspace never emails again (per ledger)."""
