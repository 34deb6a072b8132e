"""The web layer: the aiohttp application, the REST API, pages and the ``homeroom`` CLI.

It turns HTTP into calls on :mod:`rooms` and maps domain errors to JSON in one place
(:mod:`web.errors`); it holds no room state of its own.
"""
