"""In-process adapters: the backplane and price log of a single server (no Redis)."""
