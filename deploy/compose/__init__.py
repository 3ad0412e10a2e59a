"""``make compose-test``: the compose stack built and run for real, then taken down.

Modules, in the order the driver uses them:

* ``engine``: which container engine answers (a Docker engine, else podman) and,
  for podman, its Docker-API socket and the healthcheck runner it needs without
  systemd;
* ``baseimages``: the base images the stack needs, pulled when a registry answers,
  else built here (mmdebstrap + Debian packages, uv from its PyPI wheel) and cached;
* ``receiver``: the HTTPS webhook receiver on the host, with its throwaway CA;
* ``compose_test``: the driver (``uv run python -m deploy.compose.compose_test``).

Background and measurements: ``real-components.md`` section 6d in the shared docs.
"""
