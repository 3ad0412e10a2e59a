"""Container HEALTHCHECK: GET http://127.0.0.1:<port>/health for this image's service.

The port follows the service's own variable (``PORT`` for the gateway,
``<SERVICE>_METRICS_PORT`` for workers) so an operator who moves the port
doesn't also have to rewrite the healthcheck. Exit 0 when healthy, 1 otherwise.
Standard library only: the runtime image carries nothing else for this.
"""

from __future__ import annotations

import os
import sys
import urllib.request

DEFAULT_PORTS = {"ingest": 9101, "offload": 9102, "notify": 9103, "gateway": 8000}


def main() -> int:
    service = os.environ.get("RENDER_SIGNAL_SERVICE", "")
    if service not in DEFAULT_PORTS:
        print(f"healthcheck: unknown RENDER_SIGNAL_SERVICE={service!r}", file=sys.stderr)
        return 1
    port_var = "PORT" if service == "gateway" else f"{service.upper()}_METRICS_PORT"
    port = int(os.environ.get(port_var) or DEFAULT_PORTS[service])
    url = f"http://127.0.0.1:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except OSError as exc:
        print(f"healthcheck: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
