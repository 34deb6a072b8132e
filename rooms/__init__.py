"""The Homeroom domain: sessions, rosters, membership, admission, controls and attendance.

This package knows nothing about HTTP, socket.io or WebRTC; the outer packages
(``web``, ``signaling``, ``media``) call into it, never the other way round.
"""
