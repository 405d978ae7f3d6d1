"""The background worker: claim a job, process it through the services, record the outcome."""
