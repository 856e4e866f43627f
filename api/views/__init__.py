"""API v1 views, one module per resource. Each view parses its input with an input
serializer, calls one operation of ``courses.services`` (or a read of
``courses.selectors``) and renders the result with an output serializer."""
