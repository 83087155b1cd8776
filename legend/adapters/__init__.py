"""Adapters translate between the domain's ports and real technology (Litestar, Redis, SQL, vendors)."""
