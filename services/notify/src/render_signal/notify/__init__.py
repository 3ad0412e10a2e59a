"""render-signal notify service."""
