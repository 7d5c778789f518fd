"""Warmup: new inboxes ramped up by sending to and answering each other through a pool of real mailboxes."""
