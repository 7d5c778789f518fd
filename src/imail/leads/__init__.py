"""Leads: a campaign's recipients, created one by one, in bulk or from a CSV file."""
