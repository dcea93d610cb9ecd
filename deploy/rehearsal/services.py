"""The processes and loopback services a rehearsal runs, and their clean-up.

Every process is started in a session of its own, so that ending it ends what it started too (the
worker pool's boot and SDK processes, a launcher's threads and children), and `Processes` ends them
all when the rehearsal stops: on success, on failure, on Ctrl-C or SIGTERM. Every wait is bounded.
Only loopback addresses are used: the services listen on 127.0.0.1 or localhost (Beam's gRPC
servers bind every interface, but every client is told `localhost`), and any other HTTP request a
client might make is sent to a closed loopback port (HTTP(S)_PROXY) and fails at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

START_SECONDS = 60.0
STOP_SECONDS = 10.0
PROJECT = "rehearsal-project"


class ServiceError(RuntimeError):
    """A service of the rehearsal did not start."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Processes:
    """Processes started for the rehearsal, each in its own session; all ended by `stop_all`."""

    logs: Path
    started: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen:
        """Start `argv` with its output in logs/NAME.log."""
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "wb") as log:
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started[name] = process
        return process

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        """End the process's whole group: `sig` first, SIGKILL after STOP_SECONDS."""
        process = self.started.pop(name, None)
        if process is None:
            return
        _signal_group(process, sig)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(STOP_SECONDS)
        _signal_group(process, signal.SIGKILL)  # anything the leader left behind in its group

    def stop_all(self) -> None:
        for name in reversed(list(self.started)):
            self.stop(name)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *_) -> None:
        self.stop_all()


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)  # the process leads its own session, so its group id is its pid


def wait_for_port(port: int, process: subprocess.Popen, what: str, seconds: float = START_SECONDS) -> None:
    """Wait until something accepts connections on 127.0.0.1:port; ServiceError if `process` dies first."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None:
                raise ServiceError(f"{what} exited with code {process.returncode} before it listened") from None
            if time.monotonic() > deadline:
                raise ServiceError(f"{what} did not listen on port {port} within {seconds:.0f} s") from None
            time.sleep(0.1)


class _MetadataHandler(BaseHTTPRequestHandler):
    """The few answers of the Compute Engine metadata server that google-auth asks for."""

    ACCOUNT = f"rehearsal-worker@{PROJECT}.iam.gserviceaccount.com"
    ANSWERS: ClassVar[dict[str, str]] = {
        "/": "",  # google-auth's ping: only the Metadata-Flavor header matters
        "/computeMetadata/v1/project/project-id": PROJECT,
        "/computeMetadata/v1/universe/universe-domain": "googleapis.com",
        "/computeMetadata/v1/instance/service-accounts/ACCOUNT/": json.dumps(
            {"aliases": ["default"], "email": ACCOUNT, "scopes": ["https://www.googleapis.com/auth/cloud-platform"]}
        ),
        "/computeMetadata/v1/instance/service-accounts/ACCOUNT/token": json.dumps(
            {"access_token": "rehearsal-token", "expires_in": 3600, "token_type": "Bearer"}
        ),
    }

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        # The account is asked for as "default", then by its e-mail address.
        path = re.sub(r"(/service-accounts/)[^/]+", r"\1ACCOUNT", path)
        body = self.ANSWERS.get(path)
        data = (body or "").encode()
        self.send_response(404 if body is None else 200)
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Type", "application/json" if data.startswith(b"{") else "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_) -> None:  # quiet
        pass


class MetadataServer:
    """A loopback stand-in for the worker VM's metadata server: the service account's token.

    On Dataflow the launcher VM and the workers authenticate as their service account through the
    metadata server. Here GCE_METADATA_HOST and GCE_METADATA_IP point google-auth at this server, so
    the launcher and the workers find credentials at once, the way they do on Google Cloud. Without
    it google-auth would look for the real metadata server (a request off this machine), and Beam's
    Cloud Storage client would spend its credential retries in every worker process before going anonymous.
    The emulator ignores the token.
    """

    def __init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _MetadataHandler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="metadata", daemon=True)

    def __enter__(self) -> MetadataServer:
        self.thread.start()
        return self

    def __exit__(self, *_) -> None:
        self.server.shutdown()
        self.server.server_close()


def loopback_env(base: dict[str, str], emulator_url: str, metadata: str, home: Path) -> dict[str, str]:
    """The environment of every process of the rehearsal: Cloud Storage is the emulator, credentials
    come from the metadata stand-in, and any other HTTP(S) request goes to a closed loopback port."""
    closed = f"http://127.0.0.1:{free_port()}"
    env = {key: value for key, value in base.items() if key != "GOOGLE_APPLICATION_CREDENTIALS"}
    env.update(
        STORAGE_EMULATOR_HOST=emulator_url,
        GCE_METADATA_HOST=metadata,
        GCE_METADATA_IP=metadata,
        GOOGLE_CLOUD_PROJECT=PROJECT,
        CLOUDSDK_CONFIG=str(home),  # an empty gcloud folder: no user credentials found on this machine
        PYTHONUNBUFFERED="1",
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
        **{name: closed for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy")},
    )
    home.mkdir(parents=True, exist_ok=True)
    return env
