"""Built-in plugins. Each module is loaded exactly like a third-party plugin (see ``plugins.py``)."""
