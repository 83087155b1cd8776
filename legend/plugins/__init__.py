"""Plugins (pluggy): hook specifications and the plugin manager arrive with the plugin system."""
