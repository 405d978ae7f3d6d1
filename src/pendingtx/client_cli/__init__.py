"""The client commands of the `pendingtx` command line (submit, status, transactions list).

They use only the SDK (`pendingtx.client`), click and rich, never the server's modules, so they
work on a machine where only the client is installed. `pendingtx.cli` declares the commands;
the logic lives here, one module per concern.
"""
