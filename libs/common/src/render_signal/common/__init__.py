"""render-signal shared plumbing."""
