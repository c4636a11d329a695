"""JupyterHub smoke test of deploy/jupyterhub/: real Unix users, local process spawner, the
nbgrader exchange; a student logs in through the REST API, gets a server where ``aecourse``
imports, lists and fetches the released assignment through nbgrader's server extension, and has
no Formgrader; the instructor has it."""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest
import unix_users

pytestmark = [pytest.mark.xdist_group("hub"), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "jupyterhub"
CHP_VERSION = "4.6.3"
CHP_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "aecourse" / "chp"


def proxy_command():
    """configurable-http-proxy: on the PATH, in the cache, or installed there from npm."""
    found = shutil.which("configurable-http-proxy")
    cached = CHP_CACHE / "node_modules" / ".bin" / "configurable-http-proxy"
    if found:
        return found
    if not cached.exists():
        if shutil.which("npm") is None:
            pytest.fail("configurable-http-proxy is missing and npm is not installed "
                        "(apt-get install npm)")
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(CHP_CACHE),
                        f"configurable-http-proxy@{CHP_VERSION}"],
                       check=True, capture_output=True, timeout=600)
    return str(cached)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Hub:
    """A running hub, and a tiny REST client for it (tokens in headers, JSON both ways)."""

    def __init__(self, url):
        self.url = url

    def request(self, method, path, *, token=None, body=None, form=None):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if token:
            headers["Authorization"] = f"token {token}"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except urllib.error.URLError as error:  # not listening (yet)
            return 0, str(error)

    def login(self, name, password):
        """A token for ``name``, from its username and password, through the REST API."""
        status, text = self.request("POST", f"/hub/api/users/{name}/tokens",
                                    body={"auth": {"username": name, "password": password},
                                          "note": "aecourse hub test"})
        assert status in (200, 201), (status, text)
        return json.loads(text)["token"]

    def start_server(self, name, token, timeout=180):
        status, text = self.request("POST", f"/hub/api/users/{name}/server", token=token)
        assert status in (201, 202), (status, text)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status, text = self.request("GET", f"/hub/api/users/{name}", token=token)
            server = json.loads(text)["servers"].get("", {})
            if server.get("ready"):
                return
            time.sleep(0.5)
        raise AssertionError(f"the server of {name} did not start in {timeout} s")


def run_code(hub, name, token, code):
    """Run ``code`` in a new kernel of ``name``'s server; its stdout (tornado websocket)."""
    import asyncio

    from tornado.websocket import websocket_connect

    status, text = hub.request("POST", f"/user/{name}/api/kernels", token=token, body={})
    assert status == 201, (status, text)
    kernel = json.loads(text)["id"]

    async def execute():
        url = hub.url.replace("http", "ws") + f"/user/{name}/api/kernels/{kernel}/channels"
        request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
        from tornado.httpclient import HTTPRequest
        ws = await websocket_connect(HTTPRequest(url, headers=dict(request.header_items())))
        msg_id = uuid.uuid4().hex
        ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": name,
                       "session": uuid.uuid4().hex, "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False,
                        "user_expressions": {}, "allow_stdin": False}}))
        out = []
        while True:
            msg = json.loads(await asyncio.wait_for(ws.read_message(), 120))
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            if msg["msg_type"] == "error":
                out.append("\n".join(msg["content"]["traceback"]))
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                ws.close()
                return "".join(out)

    try:
        return asyncio.run(execute())
    finally:
        hub.request("DELETE", f"/user/{name}/api/kernels/{kernel}", token=token)


@pytest.fixture(scope="module")
def hub():
    """deploy/jupyterhub/ started on loopback with a shared-password overlay, ps1 released."""
    if unix_users.unavailable():
        pytest.skip(unix_users.unavailable())
    timings = {}
    start = time.monotonic()
    chp = proxy_command()
    timings["proxy found or installed"] = time.monotonic() - start
    with unix_users.class_accounts(["inst", "stud"], group_role="inst") as users:
        base = Path(users["base"])
        exchange = base / "exchange"
        subprocess.run(["sh", str(DEPLOY / "setup_exchange.sh"), str(exchange)], check=True,
                       capture_output=True)
        env = {"AECOURSE_EXCHANGE_ROOT": str(exchange)}

        course = Path(unix_users.home(users["inst"])) / "aecourse"
        course.mkdir()
        shutil.copy(ROOT / "nbgrader_config.py", course)
        shutil.copytree(ROOT / "exercises" / "ps1", course / "exercises" / "ps1")
        subprocess.run(["chown", "-R", f"{users['inst']}:", str(course)], check=True)
        unix_users.as_user(users["inst"], [sys.executable, "-m", "nbgrader",
                                           "release_assignment", "ps1"],
                           park=users["park"], cwd=course, env=env)

        password = secrets.token_urlsafe(16)
        hub_dir = base / "hub"
        hub_dir.mkdir()
        port, hub_port, api_port = free_port(), free_port(), free_port()
        overlay = hub_dir / "jupyterhub_config.py"
        overlay.write_text(f"""
load_subconfig({str(DEPLOY / 'jupyterhub_config.py')!r})
# The test's authenticator: one shared password, the two test accounts only.
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {password!r}
c.Authenticator.allowed_users = {{{users['inst']!r}, {users['stud']!r}}}
c.JupyterHub.port = {port}
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{chp!r}]
c.JupyterHub.db_url = "sqlite:///{hub_dir / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = {str(hub_dir / 'cookie_secret')!r}
c.JupyterHub.pid_file = {str(hub_dir / 'jupyterhub.pid')!r}
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
""")
        hub_env = {**os.environ, **env, "AECOURSE_INSTRUCTORS_GROUP": users["group"],
                   "PATH": unix_users.BIN + os.pathsep + os.environ["PATH"]}
        log = open(hub_dir / "hub.log", "w")
        start = time.monotonic()
        command = [os.path.join(unix_users.BIN, "jupyterhub"), "-f", str(overlay)]
        command = unix_users.reachable(command, users["park"], keep=[Path(chp).parents[2]])
        process = subprocess.Popen(command, cwd=hub_dir, env=hub_env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        client = Hub(f"http://127.0.0.1:{port}")
        try:
            deadline = time.monotonic() + 120
            while client.request("GET", "/hub/api")[0] != 200:
                assert process.poll() is None, (hub_dir / "hub.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the hub did not answer in 120 s"
                time.sleep(0.3)
            timings["hub up"] = time.monotonic() - start
            yield client, users, password, timings, hub_dir
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            log.close()
            print("hub timings (s):", {k: round(v, 1) for k, v in timings.items()})


def test_hub_listens_on_loopback_only(hub):
    client, *_ = hub
    assert client.url.startswith("http://127.0.0.1:")
    config = (DEPLOY / "jupyterhub_config.py").read_text()
    assert 'c.JupyterHub.ip = "127.0.0.1"' in config


def logged_in(hub, role):
    """(client, user name, token) of ``role`` logged in with a running server (timed)."""
    client, users, password, timings, _ = hub
    name = users[role]
    start = time.monotonic()
    token = client.login(name, password)
    client.start_server(name, token)
    timings[f"{role}: login + server ready"] = time.monotonic() - start
    return client, name, token


def test_student_logs_in_fetches_the_assignment_and_has_no_formgrader(hub):
    client, name, token = logged_in(hub, "stud")
    timings = hub[3]

    out = run_code(client, name, token, "import aecourse, nbgrader; print(aecourse.__file__)")
    assert out.strip() == str(ROOT / "aecourse" / "__init__.py"), out

    status, text = client.request("GET", f"/user/{name}/assignments?course_id=aecourse",
                                  token=token)
    assert status == 200, text
    listed = json.loads(text)["value"]
    assert [(a["assignment_id"], a["status"]) for a in listed] == [("ps1", "released")]

    start = time.monotonic()
    status, text = client.request("POST", f"/user/{name}/assignments/fetch", token=token,
                                  form={"course_id": "aecourse", "assignment_id": "ps1"})
    timings["student fetch"] = time.monotonic() - start
    assert status == 200, text
    assert [(a["assignment_id"], a["status"]) for a in json.loads(text)["value"]] == \
        [("ps1", "fetched")]
    status, text = client.request("GET", f"/user/{name}/api/contents/ps1/ps1.ipynb", token=token)
    assert status == 200, text
    fetched = Path(unix_users.home(name)) / "ps1" / "ps1.ipynb"
    assert fetched.read_bytes() == (ROOT / "exercises" / "ps1" / "ps1.ipynb").read_bytes()
    assert os.stat(fetched).st_uid == os.stat(unix_users.home(name)).st_uid

    assert client.request("GET", f"/user/{name}/formgrader", token=token)[0] == 404
    assert client.request("GET", f"/user/{name}/formgraders", token=token)[0] == 404
    status, page = client.request("GET", f"/user/{name}/lab", token=token)
    assert status == 200
    assert '"@jupyter/nbgrader:formgrader"' in disabled_extensions(page)


def test_instructor_has_formgrader(hub):
    client, name, token = logged_in(hub, "inst")
    status, text = client.request("GET", f"/user/{name}/formgrader", token=token)
    assert status == 200, text
    assert client.request("GET", f"/user/{name}/formgraders", token=token)[0] == 200
    status, page = client.request("GET", f"/user/{name}/lab", token=token)
    assert status == 200
    assert '"@jupyter/nbgrader:formgrader"' not in disabled_extensions(page)


def test_a_wrong_password_gets_no_token(hub):
    client, users, password, _, _ = hub
    status, _ = client.request("POST", f"/hub/api/users/{users['stud']}/tokens",
                               body={"auth": {"username": users["stud"],
                                              "password": password + "x"}})
    assert status == 403


def disabled_extensions(page):
    """The ``disabledExtensions`` list of a JupyterLab page's embedded configuration."""
    start = page.index('id="jupyter-config-data"')
    data = page[page.index(">", start) + 1:page.index("</script>", start)]
    return json.dumps(json.loads(data).get("disabledExtensions", []))
