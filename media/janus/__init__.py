"""Homeroom's side of Janus: its configuration, its process, and a client of its JSON API."""
