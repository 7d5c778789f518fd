"""Analytics: daily rollups maintained with each event, the reports read from them, `imail analytics
rebuild`."""
