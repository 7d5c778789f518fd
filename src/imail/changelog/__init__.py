"""The changelog, generated from the `Imail-Version` snapshot modules: an HTML page and the same as data."""
