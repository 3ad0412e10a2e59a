"""render-signal dev tooling: run the stack locally, and the fixtures its tests share."""
