"""The client commands: `pendingtx-client`, and the same commands inside the server's `pendingtx`.

They use only the SDK (`pendingtx_client`), click and rich, never the server's modules, so they
work where only this package is installed. `commands` declares them and imports only click at
module level (shell completion runs it on every Tab); the logic lives in one module per concern.
"""
