"""Use cases shared by the HTTP API, the worker and the command line."""
