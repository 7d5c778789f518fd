"""Campaigns: sequences of steps sent from inboxes, their status machine and the template language."""
