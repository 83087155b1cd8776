"""The built-in plugins. Each is written exactly as a third party would write one: hooks and the context
only, declared as a ``legend.plugins`` entry point and enabled by default."""
