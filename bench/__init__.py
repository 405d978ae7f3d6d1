"""Benchmarks of pendingtx, measured side by side with their anchors; run with `make bench`."""
