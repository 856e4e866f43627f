"""Template filters of the web pages."""
