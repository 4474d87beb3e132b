"""S3 (and S3-compatible) sources: listing with sizes and ETags, and conditional reads.

Credentials are never passed around: each process finds them in its own environment, a
profile, or an instance / pod role (boto3's default chain). Only the endpoint and region
travel, inside the picklable `S3Settings`.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from dataclasses import dataclass
from typing import Any

from smartray.errors import ConfigError, SourceError
from smartray.sources.base import Listing, SourceEntry
from smartray.types import Reason, RejectedInput

_clients: dict[tuple[str | None, str | None], Any] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class S3Settings:
    """Where S3 is: endpoint and region (from env `AWS_ENDPOINT_URL`, `AWS_REGION`)."""

    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_env(cls) -> S3Settings:
        """Endpoint and region from this process's environment."""
        return cls(
            endpoint_url=os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL"),
            region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"),
        )

    def client(self) -> Any:
        """A boto3 S3 client, one per process and settings (boto3 clients are thread-safe)."""
        key = (self.endpoint_url, self.region)
        with _lock:
            if key not in _clients:
                import boto3
                from botocore.config import Config

                _clients[key] = boto3.client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=Config(retries={"max_attempts": 5, "mode": "standard"}),
                )
            return _clients[key]


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/prefix` as (bucket, prefix)."""
    if not uri.startswith("s3://"):
        raise ConfigError(f"{uri!r} is not an s3:// URI")
    bucket, _, prefix = uri[5:].partition("/")
    if not bucket:
        raise ConfigError(f"{uri!r} names no bucket")
    return bucket, prefix


def list_s3(uri: str, settings: S3Settings, listing: Listing) -> None:
    """Adds every object under `s3://bucket/prefix` to `listing` (size, ETag, mtime).

    The prefix is a folder: `s3://b/photos` lists `photos/...` (and an object named
    exactly `photos`), never `photos-private/...`. Keys whose last path part starts with
    "." and folder markers (keys ending in "/") are not inputs.

    Raises:
        SourceError: the bucket does not exist or cannot be listed.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, prefix = split_s3_uri(uri)
    folder = prefix.rstrip("/") + "/" if prefix else ""
    paginator = settings.client().get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"]
                inside = key == prefix.rstrip("/") or key.startswith(folder)
                if not inside or key.endswith("/") or key.rsplit("/", 1)[-1].startswith("."):
                    continue
                modified: dt.datetime = obj["LastModified"]
                listing.entries.append(
                    SourceEntry(
                        uri=f"s3://{bucket}/{key}",
                        size=int(obj["Size"]),
                        mtime_ns=int(modified.timestamp() * 1e9),
                        etag=str(obj.get("ETag", "")).strip('"') or None,
                        root=f"s3://{bucket}/{prefix}",
                    )
                )
    except (ClientError, BotoCoreError) as e:
        raise SourceError(f"source {uri!r} cannot be listed: {e}") from e


class S3Reader:
    """Reads objects, only if unchanged since listing (`If-Match` on the listed ETag)."""

    def __init__(self, settings: S3Settings):
        self.settings = settings

    def read(self, entry: SourceEntry, max_bytes: int | None = None) -> bytes:
        """The object's bytes (at most `max_bytes` + 1 of them are fetched).

        Raises:
            RejectedInput: `unreadable` if the object is gone, changed since listing, or
                the read fails after boto3's retries.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = split_s3_uri(entry.uri)
        args: dict[str, str] = {"Bucket": bucket, "Key": key}
        if entry.etag:
            args["IfMatch"] = f'"{entry.etag}"'
        if max_bytes is not None:
            args["Range"] = f"bytes=0-{max_bytes}"
        try:
            body = self.settings.client().get_object(**args)["Body"]
            return bytes(body.read())
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                detail = "object deleted between listing and reading"
            elif code in ("PreconditionFailed", "412"):
                detail = "object changed between listing and reading"
            else:
                detail = f"read failed: {code or e}"
            raise RejectedInput(Reason.UNREADABLE, detail) from None
        except BotoCoreError as e:
            raise RejectedInput(Reason.UNREADABLE, f"read failed: {e}") from None
