"""Docker HEALTHCHECK probe: exit 0 when /api/health answers 2xx, 1 otherwise.

Standard library only, so the image needs no curl, and it starts fast (no app import) because Docker
runs it every interval. ``python healthcheck.py [URL]``; the default URL is the one the image's
CMD serves. When PLAYGROUND_API_TOKEN is set it is sent, so the probe keeps working with
PLAYGROUND_AUTH_READS=true.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

DEFAULT_URL = "http://127.0.0.1:8000/api/health"
TIMEOUT_SECONDS = 4  # below the HEALTHCHECK --timeout, so the probe reports instead of being killed


def probe(url: str, token: str | None) -> tuple[bool, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            return True, f"{url}: HTTP {response.status}"
    except urllib.error.HTTPError as exc:  # 4xx/5xx: the server answers but is not healthy
        return False, f"{url}: HTTP {exc.code} {exc.reason}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url}: {reason}"


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else DEFAULT_URL
    healthy, message = probe(url, os.environ.get("PLAYGROUND_API_TOKEN") or None)
    # Docker keeps the last lines of output in `docker inspect` (.State.Health.Log).
    print(("healthy: " if healthy else "unhealthy: ") + message)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
