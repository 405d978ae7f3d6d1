"""pendingtx: an asynchronous pending-transaction ingestion API with job-status tracking."""

__version__ = "0.1.0"
