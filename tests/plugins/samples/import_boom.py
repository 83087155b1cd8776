"""A plugin that fails as soon as it is imported (the kill switch must keep it from being imported)."""

raise ImportError("this plugin cannot even be imported")
