"""What a hostile or unlucky client sends, on a real server: non-finite numbers, huge integers,
cross-site writes, connections that never finish their headers; and the headers and description
the server answers with (issue 10, items 7, 8, 10, 11 and 13)."""

from __future__ import annotations

import http.client
import socket

import httpx
import pytest

from tests.service.helpers import LONG_LINEAR, field_errors, post_job, wait_for
from tests.service.sse import iter_sse

TOO_BIG = 2**63  # one past SQLite's largest integer


@pytest.fixture(scope="module")
def client(server):
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def finished_job(client):
    return wait_for(client, post_job(client, "linear", {"epochs": 20})["id"])


# ----------------------------------------------------------------------------------------------
# Item 7: NaN, Infinity and 1e400 are 422 naming the field, never 500


@pytest.mark.parametrize(
    ("body", "loc", "echoed"),
    [
        ('{"kind": "linear", "params": {"lr": NaN}}', ("body", "params", "lr"), "NaN"),
        ('{"kind": "linear", "params": {"lr": Infinity}}', ("body", "params", "lr"), "Infinity"),
        ('{"kind": "mlp", "params": {"input_scale": -Infinity}}', ("body", "params", "input_scale"), "-Infinity"),
        ('{"kind": "linear", "params": {"epochs": 1e400}}', ("body", "params", "epochs"), "Infinity"),
        ('{"kind": "linear", "params": {"data": [[1, 2], [NaN, 3]]}}', ("body", "params", "data", 1, 0), "NaN"),
        ('{"kind": "mlp", "params": {"data": [[1, 2], [3, 1e400]]}}', ("body", "params", "data", 1, 1), "Infinity"),
        ('{"kind": NaN}', ("body", "kind"), "NaN"),
        ('{"kind": "linear", "seed": Infinity}', ("body", "seed"), "Infinity"),
    ],
)
def test_non_finite_numbers_are_422_naming_the_field(client, body, loc, echoed):
    response = client.post("/api/jobs", content=body, headers={"Content-Type": "application/json"})
    errors = field_errors(response)
    assert loc in errors, errors
    assert [e["input"] for e in response.json()["detail"] if tuple(e["loc"]) == loc] == [echoed]


def test_non_finite_data_is_never_stored(client):
    before = client.get("/api/jobs").json()["total"]
    body = '{"kind": "linear", "params": {"epochs": 10, "data": [[1, 2], [NaN, 3], [4, 5]]}}'
    assert client.post("/api/jobs", content=body, headers={"Content-Type": "application/json"}).status_code == 422
    assert client.get("/api/jobs").json()["total"] == before


# ----------------------------------------------------------------------------------------------
# Item 8: integers past SQLite's are 422 naming the parameter


def test_an_offset_past_sqlite_integers_is_422(client):
    for offset in (TOO_BIG, 10**30):
        errors = field_errors(client.get("/api/jobs", params={"offset": offset}))
        assert "less than or equal to 9007199254740991" in errors[("query", "offset")]
    assert client.get("/api/jobs", params={"offset": 2**53 - 1}).json()["items"] == []


def test_a_last_event_id_past_sqlite_integers_is_422(client, finished_job):
    url = f"/api/jobs/{finished_job['id']}/events"
    errors = field_errors(client.get(url, headers={"Last-Event-ID": str(TOO_BIG)}))
    assert ("header", "last-event-id") in errors
    errors = field_errors(client.get(url, params={"last_event_id": str(TOO_BIG)}))
    assert ("query", "last_event_id") in errors
    # The largest allowed id is served: a stream that ends (nothing comes after it).
    with client.stream("GET", url, headers={"Last-Event-ID": str(2**53 - 1)}) as response:
        assert response.status_code == 200
        list(iter_sse(response))


# ----------------------------------------------------------------------------------------------
# Item 10: a browser's cross-site write is refused, with or without a token

CROSS_SITE = [
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # another port or subdomain of the same site: another origin
]


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_cross_site_writes_are_403_and_change_nothing(server, client, headers):
    job = post_job(client, "linear", LONG_LINEAR)
    for method, path in [
        ("POST", f"/api/jobs/{job['id']}/cancel"),
        ("DELETE", f"/api/jobs/{job['id']}"),
        ("POST", f"/api/jobs/{job['id']}/predict"),
        ("POST", "/api/jobs"),
    ]:
        response = client.request(method, path, headers=headers, json={"kind": "linear"})
        assert response.status_code == 403, (method, path, response.text)
        assert "cross-site" in response.json()["detail"]
    assert client.get(f"/api/jobs/{job['id']}").json()["status"] in ("queued", "running")
    # A read from another site is not a change: it is answered (the browser keeps it from the page).
    assert client.get(f"/api/jobs/{job['id']}", headers=headers).status_code == 200
    client.post(f"/api/jobs/{job['id']}/cancel")
    wait_for(client, job["id"])


def test_same_origin_and_non_browser_writes_pass(server, client):
    for headers in (
        {},  # curl, the CLI, scripts: neither header
        {"Origin": server.url, "Sec-Fetch-Site": "same-origin"},  # the pages
        {"Origin": server.url.upper()},  # origins compare without case
        {"Sec-Fetch-Site": "none"},  # typed in the address bar, a bookmark
    ):
        response = client.post("/api/jobs", json={"kind": "linear", "params": LONG_LINEAR}, headers=headers)
        assert response.status_code == 201, (headers, response.text)
        job = response.json()
        assert client.post(f"/api/jobs/{job['id']}/cancel", headers=headers).status_code == 202, headers
        wait_for(client, job["id"])


def test_cross_site_writes_are_refused_with_a_token_too(server_factory):
    token = "t0ken-for-the-cross-site-test"
    srv = server_factory(env={"PLAYGROUND_API_TOKEN": token}, workers=1)
    with srv.client(headers={"Authorization": f"Bearer {token}"}) as api:
        job = post_job(api, "linear", LONG_LINEAR)
        response = api.post(f"/api/jobs/{job['id']}/cancel", headers={"Origin": "http://evil.example"})
        assert response.status_code == 403 and "evil.example" in response.json()["detail"]
        assert api.post(f"/api/jobs/{job['id']}/cancel", headers={"Origin": srv.url}).status_code == 202
        wait_for(api, job["id"])


# ----------------------------------------------------------------------------------------------
# Item 11: a connection that never finishes its headers is closed; the connections are bounded


def _half_request(port: int, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(data)
    sock.settimeout(60)  # far longer than the server's header timeout: only a hang reaches it
    return sock


def test_connections_that_never_finish_their_headers_are_closed(server_factory):
    srv = server_factory(env={"PLAYGROUND_HEADER_TIMEOUT": "1"}, workers=1)
    idle = [_half_request(srv.port, b"") for _ in range(5)]
    partial = [_half_request(srv.port, b"GET /api/hea") for _ in range(20)]
    headers_only = [_half_request(srv.port, b"GET /api/health HTTP/1.1\r\nHost: x\r\n") for _ in range(5)]
    for sock in idle + partial + headers_only:
        try:
            assert sock.recv(1024) == b"", "the server answered a request it never got whole"
        except TimeoutError:
            pytest.fail("the server kept a connection open that never finished its request headers")
        finally:
            sock.close()
    # A keep-alive connection's second request is held to the same limit.
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    conn.request("GET", "/api/health")
    assert conn.getresponse().read() and conn.sock is not None
    conn.sock.sendall(b"GET /api/health HTTP/1.1\r\nHo")
    try:
        assert conn.sock.recv(1024) == b""
    except TimeoutError:
        pytest.fail("a second request that never finished its headers kept the connection open")
    finally:
        conn.close()
    assert httpx.get(f"{srv.url}/api/health").status_code == 200


def test_connections_over_the_limit_are_503(server_factory):
    # Keep-alive far longer than the test: the first connections stay open until it closes them.
    srv = server_factory(env={"PLAYGROUND_MAX_CONNECTIONS": "3", "PLAYGROUND_KEEP_ALIVE_TIMEOUT": "300"}, workers=1)
    connections = [http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60) for _ in range(4)]
    try:
        statuses = []
        for conn in connections:  # each answer means the server holds that connection
            conn.request("GET", "/api/health")
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
        # The third open connection reaches the limit of 3 (the one asking counts).
        assert statuses == [200, 200, 503, 503]
    finally:
        for conn in connections:
            conn.close()


# ----------------------------------------------------------------------------------------------
# Item 13: security headers, /docs without a CDN, and a description that matches the server

SECURITY_HEADERS = ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy")


def _directives(csp: str) -> dict[str, str]:
    return dict((part.strip() + " ").split(" ", 1) for part in csp.split(";"))


@pytest.mark.parametrize("path", ["/", "/jobs", "/compare", "/docs", "/api/health", "/static/js/api.js", "/nowhere"])
def test_every_answer_has_the_security_headers(client, path):
    response = client.get(path)
    for name in SECURITY_HEADERS:
        assert name in response.headers, (path, name)
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    csp = _directives(response.headers["content-security-policy"])
    assert csp["frame-ancestors"].strip() == "'none'"
    assert "unsafe" not in csp["script-src"] and "unsafe" not in csp["style-src-elem"]


def test_docs_are_served_from_the_package(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert "https://" not in page.text  # no CDN, no remote icon
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/static/vendor/swagger-ui/{asset}" in page.text
        assert client.get(f"/static/vendor/swagger-ui/{asset}").status_code == 200
    assert client.get("/static/vendor/swagger-ui/LICENSE").status_code == 200
    assert "'sha256-" in _directives(page.headers["content-security-policy"])["script-src"]  # its inline start-up
    assert client.get("/redoc").status_code == 404


def test_the_description_documents_the_errors_the_server_answers(client):
    spec = client.get("/openapi.json").json()
    ops = spec["paths"]
    assert {"400", "403", "413", "422", "429"} <= set(ops["/api/jobs"]["post"]["responses"])
    assert {"403", "404", "409"} <= set(ops["/api/jobs/{job_id}/cancel"]["post"]["responses"])
    assert "404" in ops["/api/jobs/{job_id}"]["get"]["responses"]
    # No token on this server: every security requirement has the empty alternative.
    for operations in ops.values():
        for operation in operations.values():
            assert "security" not in operation or {} in operation["security"]
    kinds = {ref["$ref"].rsplit("/", 1)[1] for ref in spec["components"]["schemas"]["JobCreate"]["oneOf"]}
    consts = {spec["components"]["schemas"][name]["properties"]["kind"]["const"] for name in kinds}
    assert consts == {k["kind"] for k in client.get("/api/kinds").json()}


def test_the_token_is_required_in_the_description_only_where_the_server_requires_it(server_factory):
    srv = server_factory(env={"PLAYGROUND_API_TOKEN": "x" * 20}, workers=1)
    ops = httpx.get(f"{srv.url}/openapi.json").json()["paths"]
    assert ops["/api/jobs"]["post"]["security"] == [{"HTTPBearer": []}]
    assert "401" in ops["/api/jobs"]["post"]["responses"]
    assert {} in ops["/api/jobs"]["get"]["security"] and "401" not in ops["/api/jobs"]["get"]["responses"]


def test_405_names_every_method_of_the_path(client, finished_job):
    response = client.put(f"/api/jobs/{finished_job['id']}")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "PATCH", "DELETE"}
