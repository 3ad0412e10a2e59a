"""render-signal ingest service."""
