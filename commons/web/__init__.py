"""Server-rendered web UI (Jinja2 + htmx). Calls the same services as the API, never the API."""
