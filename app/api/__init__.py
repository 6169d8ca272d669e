"""The HTTP API: routers, dependencies, and the mapping of named errors to HTTP statuses."""
