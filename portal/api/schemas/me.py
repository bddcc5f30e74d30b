"""The token's host (``GET /api/v1/me``) and this document's own answer."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, WithJsonSchema

from portal.api.schemas.base import Reply, Zone
from portal.i18n import LANGUAGES


class Me(Reply):
    id: int
    email: str = Field(json_schema_extra={"format": "email"})
    slug: str
    name: str
    timezone: Zone
    locale: Annotated[str, WithJsonSchema({"type": "string", "enum": ["", *LANGUAGES]})] = Field(
        description="The host's language for their settings and e-mails; empty: the browser's"
    )
    lead_time_minutes: int
    is_admin: bool
    allow_booking: bool
    profile_url: str = Field(json_schema_extra={"format": "uri"})


class OpenApiDocument(Reply):
    """This document."""

    model_config = ConfigDict(extra="allow")
