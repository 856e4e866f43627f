"""Tests of the nbgrader exchange plugin (no Django imported by the plugin itself)."""
