"""Where the lake lives: a local folder or `s3://bucket/prefix`, and how to reach it."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from smartray.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

DEFAULT_LAKE = "./lake"
_SCHEMES = ("s3://",)
# Non-secret S3 settings taken from the environment and passed explicitly to deltalake,
# pyarrow and Ray workers. Keys never travel this way: each process finds them in its own
# environment, profile, or instance / pod role.
# The first variable set wins, in the order boto3 uses (the S3-specific endpoint first).
_S3_ENV = {
    "AWS_ENDPOINT_URL_S3": "endpoint_url",
    "AWS_ENDPOINT_URL": "endpoint_url",
    "AWS_REGION": "region",
    "AWS_DEFAULT_REGION": "region",
}


def resolve_lake_uri(uri: str | None) -> str:
    """The lake root from a flag, env `SMARTRAY_LAKE`, or the default `./lake`.

    Local roots come back absolute, so Ray workers in other folders find the same lake.
    """
    raw = uri or os.environ.get("SMARTRAY_LAKE") or DEFAULT_LAKE
    if "://" in raw:
        if not raw.startswith(_SCHEMES):
            raise ConfigError(f"lake {raw!r}: unsupported scheme; use a local path or s3://")
        return raw.rstrip("/")
    return os.path.abspath(os.path.expanduser(raw))


@dataclass(frozen=True)
class LakeLocation:
    """A resolved lake root and the storage settings every process uses to reach it.

    Attributes:
        root: Absolute local path or `s3://bucket/prefix`, without a trailing slash.
        storage_options: deltalake storage options (endpoint, region; never keys).
    """

    root: str
    storage_options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_uri(
        cls, uri: str | None = None, storage_options: dict[str, str] | None = None
    ) -> LakeLocation:
        """Resolves `uri` (see `resolve_lake_uri`) and picks up S3 endpoint and region."""
        root = resolve_lake_uri(uri)
        options = dict(storage_options or {})
        if root.startswith("s3://"):
            for env, key in _S3_ENV.items():
                if os.environ.get(env) and key not in options:
                    options[key] = os.environ[env]
            if options.get("endpoint_url", "").startswith("http://"):
                options.setdefault("allow_http", "true")
        return cls(root=root, storage_options=options)

    @property
    def is_local(self) -> bool:
        """True for a folder on this machine."""
        return "://" not in self.root

    def table_uri(self, name: str) -> str:
        """The URI of table `name` under the lake root."""
        return f"{self.root}/{name}"

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """A pyarrow filesystem and the root's path inside it."""
        import pyarrow.fs as pafs

        if self.is_local:
            return pafs.LocalFileSystem(), self.root
        opts = self.storage_options
        fs = pafs.S3FileSystem(
            endpoint_override=opts.get("endpoint_url"),
            region=opts.get("region"),
            scheme="http" if opts.get("allow_http") == "true" else "https",
        )
        return fs, self.root.removeprefix("s3://")
