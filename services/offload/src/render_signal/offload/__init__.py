"""render-signal offload service."""
