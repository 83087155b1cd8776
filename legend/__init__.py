"""Legend Realtime: the real-time streaming service of the Legend trading platform."""

__version__ = "0.1.0"
