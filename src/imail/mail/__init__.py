"""Protocol adapters only: SMTP, IMAP, MIME building and parsing. No database here."""
