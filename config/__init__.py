"""Configuration: settings from the environment, logging set-up, and data files (billing rules).

Only the outer layers (``web``, ``signaling``, ``media``) import this package; the ``rooms``
domain receives plain values, so it can be tested without any environment.
"""
