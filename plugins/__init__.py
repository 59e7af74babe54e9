"""xfer's built-in plugins, installed as the package ``xfer_plugins`` and found through entry points."""
