"""The native JSON-RPC 2.0 WebSocket API: parse, authenticate, translate, render.

No business rules live here: every decision about orders, margin and money is the core's.
"""
