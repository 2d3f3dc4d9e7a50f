"""Page handlers of the web UI, one module per family of pages."""
