"""Workspaces, their tiers and what each tier may do."""
