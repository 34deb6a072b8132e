"""aiortc: headless participants (``participant``, ``negotiation``, ``synthetic``,
``reception``) used by tests, benchmarks and ``homeroom probe`` (``probe``); later, the
server-side forwarding unit for group sessions. Imports neither :mod:`web` nor the server."""
