"""Pure domain rules, free of web, storage and I/O concerns."""
