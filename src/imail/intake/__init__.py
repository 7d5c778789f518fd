"""Inbound mail: replies, bounces and auto-replies read over IMAP, matched to our emails and acted on."""
