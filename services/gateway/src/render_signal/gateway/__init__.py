"""render-signal gateway service."""
