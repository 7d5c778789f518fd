"""Replies: classification of inbound replies (local model and rules, optional OpenAI-compatible endpoint)."""
