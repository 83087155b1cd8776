"""The built-in ``scanner`` plugin: chart patterns found in the server's own bars, published on ``patterns``
(see ``plugin.py`` and docs/plugins.md, "A bars-reading plugin: the scanner")."""
