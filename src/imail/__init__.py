"""imail: a self-hostable cold-email outreach server speaking the imail v1 REST API."""

__version__ = "0.1.0"
