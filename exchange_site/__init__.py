"""Django project of the nbgrader exchange service: settings, URLs, WSGI entry point."""
