"""`pendingtx.client`, the SDK's name before it became its own distribution: `pendingtx_client` again.

Kept so that code written as `from pendingtx.client import Client` still runs wherever the server
is installed (which brings pendingtx-client with it); new code imports `pendingtx_client`, which
also works where only the client is installed.
"""

from pendingtx_client import *  # noqa: F403
from pendingtx_client import __all__ as __all__
