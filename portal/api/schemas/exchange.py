"""The Exchange corporate connection: the organisation mailbox and its members."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from portal.api.schemas.base import ONE_LINE, Body, Reply

Role = Literal["main", "busy", "additional", "none"]
Access = Literal["delegate", "impersonation"]
_Line = Annotated[str | None, Field(max_length=2000), ONE_LINE]


class ExchangeOrganisationRequest(Body):
    email: Annotated[
        str, Field(max_length=320, json_schema_extra={"format": "email"}, description="the mailbox")
    ]
    password: Annotated[
        str | None, Field(max_length=1000, description="blank keeps the stored one")
    ] = None
    username: Annotated[_Line, Field(description="blank, the address, or DOMAIN\\user")] = None
    ews_url: Annotated[_Line, Field(description="blank: found by Autodiscover")] = None
    access: Access | None = Field(default=None, description="default delegate")


class ExchangeMailboxRequest(Body):
    mailbox: Annotated[str | None, Field(max_length=320, description="blank: the Kairos e-mail")]


class ExchangeRoleRequest(Body):
    role: Role


class ExchangeMember(Reply):
    user_id: int
    email: str
    mailbox: str = Field(description="the member's Exchange address")
    role: Role
    connection_id: int | None
    status: str | None


class ExchangeOrganisation(Reply):
    email: str
    ews_url: str
    autodiscovered: bool
    username: str
    access: Access
    auth_type: Literal["ntlm", "basic", ""]
    version: str = Field(description="the server's build")
    status: str
    members: list[ExchangeMember]
