"""Background workers: plain async functions listed in `registry`, run by `runner`."""
