"""The HTTP layer: thin routes over the services, and the one mapping from errors to answers."""
