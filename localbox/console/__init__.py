"""The web console at /console (#9): server-rendered pages (Jinja2) with htmx, behind the admin token."""
