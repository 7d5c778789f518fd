"""Inboxes: connecting SMTP/IMAP mailboxes (passwords or OAuth), their connection state and health."""
