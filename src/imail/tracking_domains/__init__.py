"""Custom tracking domains: a workspace's (or an inbox's) own host for its links, pixel and unsubscribe
URLs."""
