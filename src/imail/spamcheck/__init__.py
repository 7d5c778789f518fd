"""Scoring rendered emails with SpamAssassin's spamd before a campaign sends them."""
