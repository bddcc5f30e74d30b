"""The JSON API's bodies and answers, one pydantic module per resource.

Each model is the single statement of a body's rules: the API validates
requests with it (``portal.api.base.operation``) and ``/api/v1/openapi.json``
is generated from it (``portal.api.schemas.document``). Bounds a settings form
shares (durations, lead times…) are constants here that ``portal.web.forms`` imports.
"""
