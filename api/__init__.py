"""The REST API (v1): authentication, permissions, serializers and views over courses/."""
