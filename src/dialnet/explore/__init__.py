"""``dialnet explore``: watch the dials turn on your own data, live in the browser.

A training run in a background thread (:class:`Explorer`, through the
library's own ``Network.fit``), a local server with a token
(:class:`ExploreServer`, :func:`serve`) and a page of plain JavaScript
modules in ``static/`` (no bundler, no CDN: it works offline)::

    from dialnet.explore import Explorer, serve
    server = serve(Explorer("seeds.csv"))        # paused on fresh dials
    print(server.url)                            # http://127.0.0.1:PORT/?token=...
    server.explorer.control("play")

The top of the library: it may import every layer below; only the
``dialnet explore`` command imports it.
"""

from .gate import StepGate
from .server import ExploreServer, serve
from .session import ACTIONS, Explorer, Snapshot

__all__ = ["ACTIONS", "ExploreServer", "Explorer", "Snapshot", "StepGate", "serve"]
