"""The HTTPS deployment of docs/SERVICE.md, for real: the shipped nginx config in front of `grader serve`.

One nginx and one service for the module. nginx runs ``docs/deploy/nginx-grader.conf`` as shipped:
the test fills its ``${...}`` placeholders (server name, a certificate from a throwaway CA made with
``openssl``, the service's port) and moves its ``listen`` ports to free loopback ones; the wrapper
around it stands in for Debian's ``/etc/nginx/nginx.conf`` (an http block including the file), with
its own pid, log and temp paths. The service is the command lines of ``docs/deploy/grader.service``
(``grader serve --host 127.0.0.1 --workers 0``) and ``docs/deploy/grader-worker@.service``
(``grader worker``), grading for real in the sandbox. Clients trust the test CA only (verification
stays on): ``submit()`` through ``SSL_CERT_FILE``, which urllib's default context honours.

Not asserted: the client address the service sees. It is not observable from outside — the
service keeps no access log (uvicorn ``access_log=False``) and no answer or stored row carries
``request.client``. What is observable of the same mechanism (uvicorn's ProxyHeadersMiddleware
trusting the proxy on 127.0.0.1) is the scheme: through nginx the sign-in cookie is ``Secure``
(``X-Forwarded-Proto: https``), straight from the service it is not.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import EXERCISE, REPO, make_settings, wait_until

from grader.service import accounts
from grader.service.app import _FORM_SLACK_BYTES
from grader.service.server import settings_env
from grader.service.store import open_store
from mlcourse.submit import SubmitError, submit

pytestmark = pytest.mark.slow

DEPLOY = REPO / "docs" / "deploy"
NGINX_CONF = DEPLOY / "nginx-grader.conf"
WEB_UNIT = DEPLOY / "grader.service"
WORKER_UNIT = DEPLOY / "grader-worker@.service"
SOLUTION = REPO / "solutions" / f"{EXERCISE}.ipynb"
REAL_GRADE = "grader.grading.engine:grade_notebook"
PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")
FOREIGN = "https://colab.research.google.com"


def _require(tool: str) -> str:
    found = shutil.which(tool, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if found is None:
        pytest.fail(
            f"{tool} is not installed: run `make setup` (it installs the Debian packages in "
            "SYSTEM_PACKAGES, nginx and openssl among them), or `apt-get install nginx openssl`"
        )
    return found


def _free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def make_certificates(openssl: str, where: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a certificate for ``localhost`` signed by it: (ca, cert, key)."""

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=where, check=True, capture_output=True, timeout=60)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    run(
        "req",
        "-x509",
        *ec,
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=grader test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    )
    run("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (where / "server.ext").write_text(
        "subjectAltName=DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    run(
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "server.pem",
        "-extfile",
        "server.ext",
    )
    return where / "ca.pem", where / "server.pem", where / "server.key"


def render_nginx_conf(values: dict[str, str], *, http_port: int, https_port: int, ipv6: bool) -> str:
    """The shipped config with its placeholders filled (what `envsubst` does) and test ports."""
    text = NGINX_CONF.read_text()
    assert set(PLACEHOLDER.findall(text)) == set(values), "the placeholders of nginx-grader.conf changed"
    text = PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
    ports = {"80": http_port, "443": https_port}
    moved = 0

    def listen(match: re.Match[str]) -> str:
        nonlocal moved
        moved += 1
        v6, port = match.group(1) is not None, ports[match.group(2)]
        if v6 and not ipv6:
            return "# (no IPv6 loopback here)"
        return f"listen {'[::1]' if v6 else '127.0.0.1'}:{port}"

    text = re.sub(r"listen (\[::\]:)?(80|443)\b", listen, text)
    assert moved == 8, f"expected 8 listen lines (80 and 443, IPv4 and IPv6) in {NGINX_CONF.name}, moved {moved}"
    return text


def wrapper_conf(where: Path, site: Path) -> str:
    """What Debian's /etc/nginx/nginx.conf gives conf.d/*.conf, with every path in ``where``."""
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the 0700 temp dir
    temp = "".join(
        f"    {kind}_temp_path {where / kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return (
        f"daemon off;\n{user}worker_processes 1;\npid {where / 'nginx.pid'};\n"
        f"error_log {where / 'error.log'} info;\nevents {{ worker_connections 128; }}\n"
        f"http {{\n    access_log {where / 'access.log'};\n{temp}    include {site};\n}}\n"
    )


def exec_start(unit: Path, key: str = "ExecStart") -> list[str]:
    """A unit's command line after ``{key}=``."""
    for line in unit.read_text().splitlines():
        if line.startswith(f"{key}="):
            return shlex.split(line.split("=", 1)[1])
    raise AssertionError(f"{unit.name} has no {key}=")


def grader_args(unit: Path, *, port: int | None = None) -> list[str]:
    """The arguments of the unit's `grader` command (its --port replaced by ``port``)."""
    command = exec_start(unit)
    assert command[0].endswith("/.venv/bin/grader"), command
    args = command[1:]
    if port is not None:
        args[args.index("--port") + 1] = str(port)
    return args


@dataclass
class Deployment:
    https_port: int
    http_port: int
    service_port: int
    ca: Path
    token: str
    #: nginx's answer to GET /api/health before the service was up: (status, content type, body)
    before_service: tuple[int, str, bytes]
    nginx_log: Path

    @property
    def url(self) -> str:
        return f"https://localhost:{self.https_port}"

    def context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca))

    def https(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("localhost", self.https_port, context=self.context(), timeout=30)


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"{what} exited with {process.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        return False

    wait_until(up, timeout_s=60, every_s=0.1, what=what)


def _get(url: str, context: ssl.SSLContext) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, context=context, timeout=30) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read()


def _stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    nginx, openssl = _require("nginx"), _require("openssl")
    where = tmp_path_factory.mktemp("https")
    ca, cert, key = make_certificates(openssl, where)
    https_port, http_port, service_port = _free_port(), _free_port(), _free_port()
    site = where / "grader.conf"
    site.write_text(
        render_nginx_conf(
            {"SERVER_NAME": "localhost", "TLS_CERT": str(cert), "TLS_KEY": str(key), "GRADER_PORT": str(service_port)},
            http_port=http_port,
            https_port=https_port,
            ipv6=_ipv6_loopback(),
        )
    )
    (where / "nginx.conf").write_text(wrapper_conf(where, site))
    settings = make_settings(where, grade_function=REAL_GRADE, lease_s=30.0, sandbox=True)
    store = open_store(settings)
    _, token = accounts.add_user(store, "ada")
    store.dispose()
    env = {**os.environ, **settings_env(settings)}
    started: list[subprocess.Popen[bytes]] = []

    def start(name: str, command: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        log = where / f"{name}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)
        return process, log

    try:
        proxy, proxy_log = start(
            "nginx", [nginx, "-p", str(where), "-c", str(where / "nginx.conf"), "-e", str(where / "error.log")]
        )
        _wait_for_port(https_port, proxy, proxy_log, "nginx to listen")
        context = ssl.create_default_context(cafile=str(ca))
        before = _get(f"https://localhost:{https_port}/api/health", context)
        web, web_log = start("service", [sys.executable, "-m", "grader", *grader_args(WEB_UNIT, port=service_port)])
        _wait_for_port(service_port, web, web_log, "grader serve to listen")
        start("worker", [sys.executable, "-m", "grader", *grader_args(WORKER_UNIT)])
        yield Deployment(
            https_port=https_port,
            http_port=http_port,
            service_port=service_port,
            ca=ca,
            token=token,
            before_service=before,
            nginx_log=where / "error.log",
        )
    finally:
        for process in reversed(started):
            _stop(process)


@pytest.fixture
def trust_test_ca(deployment: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    """urllib's default context (what submit() uses) trusts the test CA, as Colab trusts a real one."""
    monkeypatch.setenv("SSL_CERT_FILE", str(deployment.ca))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


def _notebook(tmp_path: Path, size: int) -> Path:
    """A valid notebook of about ``size`` bytes (one stream output holds the bulk)."""
    cell = {
        "cell_type": "code",
        "execution_count": 1,
        "id": "bulk",
        "metadata": {},
        "source": "print('x')",
        "outputs": [{"output_type": "stream", "name": "stdout", "text": ""}],
    }
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    empty = len(json.dumps(nb))
    cell["outputs"][0]["text"] = "x" * (size - empty)  # type: ignore[index]
    path = tmp_path / f"big-{size}.ipynb"
    path.write_text(json.dumps(nb))
    assert path.stat().st_size == size
    return path


def _post_notebook(deployment: Deployment, path: Path) -> tuple[int, dict[str, str], dict]:
    """POST /api/submissions through nginx as submit() does: (status, headers, JSON body)."""
    boundary = "----grader-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="exercise"\r\n\r\n{EXERCISE}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{path.name}"\r\n'
        "Content-Type: application/x-ipynb+json\r\n\r\n"
    )
    body = head.encode() + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    connection = deployment.https()
    try:
        connection.request(
            "POST",
            "/api/submissions",
            body=body,
            headers={
                "Authorization": f"Bearer {deployment.token}",
                "Content-Type": f"multipart/form-data; boundary={boundary}",
            },
        )
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(response.read())
    finally:
        connection.close()


# --- the shipped files are the documented ones -----------------------------------------------


def test_the_doc_shows_the_shipped_files_word_for_word() -> None:
    doc = (REPO / "docs" / "SERVICE.md").read_text()
    for path in sorted(DEPLOY.iterdir()):
        assert path.read_text().strip() in doc, f"docs/SERVICE.md does not show {path.relative_to(REPO)} as shipped"


def test_the_units_bind_loopback_and_nginx_takes_what_the_service_reads() -> None:
    web = grader_args(WEB_UNIT)
    assert web[:1] == ["serve"] and web[web.index("--host") + 1] == "127.0.0.1"
    port = web[web.index("--port") + 1]
    assert exec_start(WEB_UNIT, "ExecStartPost")[-1] == f"http://127.0.0.1:{port}/api/health"
    assert grader_args(WORKER_UNIT)[:1] == ["worker"]
    limit = re.search(r"^GRADER_MAX_UPLOAD_MB=(\d+)$", (DEPLOY / "grader.env").read_text(), re.M)
    assert limit is not None
    body_max = re.search(r"^\s*client_max_body_size (\d+);", NGINX_CONF.read_text(), re.M)
    assert body_max is not None
    # the most the service reads before refusing (app.UploadLimit), and not a byte more (see the config)
    assert int(body_max.group(1)) == int(limit.group(1)) * 10**6 + _FORM_SLACK_BYTES
    assert f"over the {limit.group(1)} MB limit" in NGINX_CONF.read_text()


# --- through nginx ----------------------------------------------------------------------------


def test_submit_over_https_is_graded(deployment: Deployment, trust_test_ca: None) -> None:
    """A learner's submit() from Colab, as it is: urllib over verified HTTPS, the real grader behind."""
    result = submit(
        EXERCISE,
        token=deployment.token,
        url=deployment.url + "/",
        notebook=SOLUTION,
        timeout_s=240,
        show=False,
        progress=False,
    )
    assert result["status"] == "graded", result["message"]
    assert result["max_score"] > 0 and result["score"] == result["max_score"]
    assert result["learner"] == "ada"


def test_an_untrusted_certificate_is_refused(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Verification is on: without the test CA, submit() refuses the connection and says so."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-bundle.pem"))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    with pytest.raises(SubmitError, match=r"cannot reach the grader.*CERTIFICATE_VERIFY_FAILED"):
        submit(EXERCISE, token=deployment.token, url=deployment.url, notebook=SOLUTION, show=False, progress=False)


def test_the_service_sees_https_and_the_host_through_the_proxy(deployment: Deployment) -> None:
    """X-Forwarded-Proto is trusted from nginx (the cookie is Secure); Host keeps its port (same-origin check)."""
    form = urllib.parse.urlencode({"token": deployment.token, "next": "/submit"})
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": deployment.url,
        "X-Forwarded-Proto": "http",
    }  # a client's own claim: nginx replaces it

    def sign_in(connection: http.client.HTTPConnection, origin: str) -> tuple[int, str, bytes]:
        connection.request("POST", "/signin", body=form, headers={**headers, "Origin": origin})
        response = connection.getresponse()
        return response.status, response.getheader("Set-Cookie") or "", response.read()

    status, cookie, _ = sign_in(deployment.https(), deployment.url)
    assert status == 303 and cookie.startswith("grader_token=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    # the same sign-in straight to the service over http: no Secure flag, so the flag above came from nginx
    direct = f"http://127.0.0.1:{deployment.service_port}"
    status, cookie, _ = sign_in(http.client.HTTPConnection("127.0.0.1", deployment.service_port, timeout=30), direct)
    assert status == 303 and "grader_token=" in cookie and "Secure" not in cookie
    # another site's form is still refused through the proxy
    status, _, body = sign_in(deployment.https(), "https://evil.example")
    assert status == 403 and b"another site" in body


def test_a_notebook_over_the_limit_gets_the_services_413_message(
    deployment: Deployment, trust_test_ca: None, tmp_path: Path
) -> None:
    """Over 5 MB: the service's own 413 up to what it reads, nginx's identical JSON beyond; never a 502."""
    service_side = _notebook(tmp_path, 5_010_000)  # over 5 MB, inside the service's 64 KiB allowance
    proxy_side = _notebook(tmp_path, 5_500_000)  # over client_max_body_size
    answers = {}
    for label, path in (("service", service_side), ("nginx", proxy_side)):
        for _ in range(5):  # a proxy that passed this on to the service's early refusal got 502s, now and then
            status, headers, body = _post_notebook(deployment, path)
            assert status == 413, (label, status, body)
        answers[label] = (headers, body)
        with pytest.raises(SubmitError) as refused:
            submit(EXERCISE, token=deployment.token, url=deployment.url, notebook=path, show=False, progress=False)
        assert (refused.value.status, refused.value.code) == (413, "too-large")
        assert "over the 5 MB limit; clear the outputs (Edit → Clear All Outputs)" in str(refused.value)
    assert "content-security-policy" in answers["service"][0]  # answered by the service itself
    assert "content-security-policy" not in answers["nginx"][0]  # answered by nginx …
    assert answers["nginx"][1] == answers["service"][1]  # … word for word the same
    # nothing reset or broke between nginx and the service (nginx logs it when the service drops an upload)
    upstream_trouble = r"\) while (reading|sending request to) upstream|upstream prematurely closed"
    assert not re.search(upstream_trouble, deployment.nginx_log.read_text())


def test_no_cors_for_other_origins(deployment: Deployment) -> None:
    """No Access-Control-* headers: a page on another origin cannot use a learner's token or read answers."""
    connection = deployment.https()
    connection.request(
        "OPTIONS",
        "/api/submissions",
        headers={
            "Origin": FOREIGN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    preflight = connection.getresponse()
    preflight.read()
    assert preflight.status == 405  # the API has no OPTIONS: the browser stops before sending the POST
    connection.request("GET", "/api/me", headers={"Origin": FOREIGN, "Authorization": f"Bearer {deployment.token}"})
    simple = connection.getresponse()
    assert simple.status == 200 and json.loads(simple.read())["name"] == "ada"  # answered, but not for the page
    connection.close()
    for response in (preflight, simple):
        assert not [name for name, _ in response.getheaders() if name.lower().startswith("access-control-")]


def test_before_the_service_is_up_nginx_answers_json(deployment: Deployment) -> None:
    status, content_type, body = deployment.before_service
    assert status == 502 and content_type == "application/json"
    assert json.loads(body)["error"]["code"] == "unavailable"


def test_plain_http_only_redirects(deployment: Deployment) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", deployment.http_port, timeout=30)
    connection.request("GET", "/api/me", headers={"Host": "localhost", "Authorization": f"Bearer {deployment.token}"})
    response = connection.getresponse()
    response.read()
    assert response.status == 301 and response.getheader("Location") == "https://localhost/api/me"
    connection.request("GET", "/api/health", headers={"Host": "grader.invalid"})  # not our name: no answer
    with pytest.raises(http.client.RemoteDisconnected):
        connection.getresponse()
    connection.close()


def test_another_host_name_gets_no_certificate(deployment: Deployment) -> None:
    with (
        socket.create_connection(("127.0.0.1", deployment.https_port), timeout=10) as raw,
        pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"),
    ):
        deployment.context().wrap_socket(raw, server_hostname="grader.invalid")
    with (
        socket.create_connection(("127.0.0.1", deployment.https_port), timeout=10) as raw,
        deployment.context().wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.version() in ("TLSv1.2", "TLSv1.3")
