"""The rehearsal's bucket on the Cloud Storage emulator, through the real google-cloud-storage client."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from deploy.rehearsal.services import Processes, wait_for_port

BUCKET = "reviewscore-rehearsal"


@dataclass
class Bucket:
    url: str
    """The emulator's address (STORAGE_EMULATOR_HOST)."""
    name: str = BUCKET
    _client: object = field(default=None, repr=False)

    @property
    def client(self):
        if self._client is None:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            self._client = storage.Client(
                project="rehearsal", credentials=AnonymousCredentials(), client_options={"api_endpoint": self.url}
            )
        return self._client

    def path(self, *parts: str) -> str:
        return "/".join([f"gs://{self.name}", *parts])

    def upload(self, local: Path, prefix: str) -> str:
        """Copy a file, or a folder's files, under gs://BUCKET/prefix; returns that gs:// path."""
        bucket = self.client.bucket(self.name)
        files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
        for file in files:
            name = prefix if local.is_file() else f"{prefix}/{file.relative_to(local).as_posix()}"
            bucket.blob(name).upload_from_filename(str(file), timeout=60)
        return self.path(prefix)

    def names(self, prefix: str) -> list[str]:
        """Object names under prefix/, relative to it."""
        base = prefix.rstrip("/") + "/"
        return sorted(b.name[len(base) :] for b in self.client.list_blobs(self.name, prefix=base, timeout=30))

    def read(self, name: str) -> bytes:
        return self.client.bucket(self.name).blob(name).download_as_bytes(timeout=60)


def start_emulator(processes: Processes, env: dict[str, str], cwd: Path, bucket: Bucket) -> subprocess.Popen:
    """`gcp-storage-emulator` on loopback at bucket.url, in memory, with the bucket (as tests/conftest.py starts it)."""
    port = bucket.url.rsplit(":", 1)[1]
    argv = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host=127.0.0.1", f"--port={port}"]
    argv += ["--in-memory", f"--default-bucket={bucket.name}"]
    return processes.start("storage-emulator", argv, env, cwd)


def wait_for_emulator(bucket: Bucket, process: subprocess.Popen) -> None:
    wait_for_port(int(bucket.url.rsplit(":", 1)[1]), process, "the Cloud Storage emulator")
