"""OHLCV bars: building them from prices, and filling their past from the provider's history."""
