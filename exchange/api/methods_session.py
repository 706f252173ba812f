"""auth.* and subscribe/unsubscribe: who the connection is and what it listens to."""

from __future__ import annotations

from typing import Any

from exchange.api.auth import check_admin_token
from exchange.api.context import ApiContext
from exchange.api.errors import ApiError, AuthCode, LimitCode
from exchange.api.params import AdminLoginParams, ChannelsParams, LoginParams
from exchange.api.registry import method
from exchange.api.session import Session
from exchange.api.streams import ACCOUNT, check_channel

MAX_CHANNELS = 64
"""Channels one connection may hold at once."""


@method("auth.login", LoginParams)
async def login(context: ApiContext, session: Session, params: LoginParams) -> Any:
    account_id = context.keys.verify(
        params.api_key, params.timestamp, params.signature, context.clock.now_ms()
    )
    if session.account_id is not None and session.account_id != account_id:
        raise ApiError(
            AuthCode.ALREADY_LOGGED_IN, "this connection is logged in to another account"
        )
    session.account_id = account_id
    return {"account_id": account_id}


@method("auth.admin", AdminLoginParams)
async def admin(context: ApiContext, session: Session, params: AdminLoginParams) -> Any:
    check_admin_token(context.admin_token, params.token)
    session.admin = True
    return {"admin": True}


@method("subscribe", ChannelsParams)
async def subscribe(context: ApiContext, session: Session, params: ChannelsParams) -> Any:
    channels = [
        check_channel(context, channel, f"channels.{index}")
        for index, channel in enumerate(params.channels)
    ]
    if ACCOUNT in channels and session.account_id is None:
        raise ApiError(AuthCode.NOT_LOGGED_IN, "the account channel needs auth.login first")
    if len(set(session.channels) | set(channels)) > MAX_CHANNELS:
        raise ApiError(
            LimitCode.TOO_MANY_SUBSCRIPTIONS, f"at most {MAX_CHANNELS} channels per connection"
        )
    for channel in channels:
        context.streams.subscribe(session, channel)
    return {"channels": sorted(session.channels)}


@method("unsubscribe", ChannelsParams)
async def unsubscribe(context: ApiContext, session: Session, params: ChannelsParams) -> Any:
    for index, channel in enumerate(params.channels):
        context.streams.unsubscribe(session, check_channel(context, channel, f"channels.{index}"))
    return {"channels": sorted(session.channels)}
