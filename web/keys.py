"""Typed keys of what the application holds, shared by its handler modules."""

from __future__ import annotations

from aiohttp import web

from config.settings import Settings
from rooms.attendance.rules import BillingRules
from rooms.program import Program
from rooms.ratelimit import Limiter
from rooms.service import Rooms
from signaling.server import SignalingServer

SETTINGS = web.AppKey("settings", Settings)
ROOMS = web.AppKey("rooms", Rooms)
SIGNALING = web.AppKey("signaling", SignalingServer)
RULES = web.AppKey("billing_rules", BillingRules)
PROGRAM = web.AppKey("program", Program)
LIMITER = web.AppKey("limiter", Limiter)
