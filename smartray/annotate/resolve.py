"""Which asset an image reference in a label file means, checked before anything is read.

A reference is a `file_name`, a path or a URL from a label file. It is matched:

1. by an explicit asset id (COCO `asset_id`, Label Studio `data.asset_id`) or a file name
   whose stem is one (`<asset_id>.jpg`, what smartray exports write);
2. otherwise by hashing the file it names: a relative path under `--image-root` (no
   absolute paths, no `..` out of the root, no symlink leaving it), an `s3://` object,
   or an `http(s)://` URL on a host the user allowed.

Any other scheme (`file:`, `ftp:`...), a host not allowed (`http://169.254.169.254/`),
or a Label Studio upload path without a task asset id is refused. Even a reference that
comes with an asset id must have an allowed form.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from smartray.annotate.model import PATH_ESCAPE, UNKNOWN_ASSET, URL_NOT_ALLOWED, Refusal

_ID = re.compile(r"^[0-9a-f]{64}$")
# Label Studio serves uploaded and local-storage files under these paths
LABEL_STUDIO_PATHS = ("/data/upload/", "/data/local-files/")
MAX_FETCH_BYTES = 256 * 2**20


def is_asset_id(text: str | None) -> bool:
    """True for 64 lowercase hex digits."""
    return bool(text) and bool(_ID.match(text or ""))


@dataclass
class Resolver:
    """Maps image references to asset ids.

    Attributes:
        sizes: asset_id -> (width, height) of every asset in the lake.
        image_root: Folder that relative `file_name`s are read under (None: refused).
        allowed_hosts: Hosts whose http(s) URLs may be fetched.
        read_s3: Reads an `s3://` object's bytes (None: s3 references are refused).
    """

    sizes: dict[str, tuple[int, int]]
    image_root: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    read_s3: Callable[[str], bytes] | None = None
    _cache: dict[str, str | Refusal] = field(default_factory=dict)

    def resolve(self, ref: str | None, entry: str, *, asset_id: str | None = None) -> str | Refusal:
        """The asset id that `ref` (and/or `asset_id`) names, or why it cannot be used."""
        ref = (ref or "").strip()
        problem = self.check_form(ref, entry, has_id=is_asset_id(asset_id))
        if problem is not None:
            return problem
        if is_asset_id(asset_id):
            return self._known(str(asset_id), entry, f"asset_id {asset_id}")
        stem = posixpath.splitext(posixpath.basename(urllib.parse.urlparse(ref).path))[0]
        if is_asset_id(stem) and stem in self.sizes:
            return stem
        if ref not in self._cache:
            self._cache[ref] = self._by_hash(ref, entry)
        found = self._cache[ref]
        return found if isinstance(found, str) else Refusal(entry, found.reason, found.detail)

    def check_form(self, ref: str, entry: str, *, has_id: bool) -> Refusal | None:
        """Refuses references of a form that is never read (whatever else is given)."""
        if not ref:
            return None if has_id else Refusal(entry, UNKNOWN_ASSET, "no image reference")
        parsed = urllib.parse.urlparse(ref)
        scheme = parsed.scheme.lower()
        if scheme in ("http", "https"):
            if parsed.hostname not in self.allowed_hosts:
                return Refusal(
                    entry,
                    URL_NOT_ALLOWED,
                    f"{ref!r}: host {parsed.hostname!r} is not allowed "
                    f"(--allow-host; allowed: {list(self.allowed_hosts)})",
                )
            return None
        if scheme == "s3":
            return None
        if scheme == "data" and has_id:
            return None
        if scheme:
            return Refusal(
                entry,
                URL_NOT_ALLOWED,
                f"{ref!r}: scheme {scheme!r} is not allowed (relative paths, s3://, "
                "http(s):// to allowed hosts)",
            )
        if ref.startswith(LABEL_STUDIO_PATHS):
            if has_id:
                return None
            return Refusal(
                entry,
                URL_NOT_ALLOWED,
                f"{ref!r}: a Label Studio upload path maps to an asset only through "
                "the task's data.asset_id",
            )
        if ref.startswith(("/", "\\")) or os.path.isabs(ref):
            return Refusal(entry, PATH_ESCAPE, f"{ref!r}: absolute paths are not read")
        norm = posixpath.normpath(ref.replace("\\", "/"))
        if norm == ".." or norm.startswith("../"):
            return Refusal(entry, PATH_ESCAPE, f"{ref!r}: leaves the image root")
        return None

    def _known(self, asset_id: str, entry: str, what: str) -> str | Refusal:
        if asset_id in self.sizes:
            return asset_id
        return Refusal(entry, UNKNOWN_ASSET, f"{what} is not an asset of this lake")

    def _by_hash(self, ref: str, entry: str) -> str | Refusal:
        scheme = urllib.parse.urlparse(ref).scheme.lower()
        try:
            if scheme == "s3":
                if self.read_s3 is None:
                    return Refusal(entry, URL_NOT_ALLOWED, f"{ref!r}: no S3 access configured")
                data = self.read_s3(ref)
            elif scheme in ("http", "https"):
                data = _fetch(ref)
            else:
                path = self._inside_root(ref, entry)
                if isinstance(path, Refusal):
                    return path
                with open(path, "rb") as f:
                    data = f.read()
        except OSError as e:
            return Refusal(entry, UNKNOWN_ASSET, f"{ref!r}: cannot be read ({e})")
        return self._known(hashlib.sha256(data).hexdigest(), entry, f"{ref!r} (by its bytes)")

    def _inside_root(self, ref: str, entry: str) -> str | Refusal:
        if self.image_root is None:
            why = f"{ref!r}: not an asset id, and no --image-root to find it under"
            return Refusal(entry, UNKNOWN_ASSET, why)
        root = os.path.realpath(self.image_root)
        path = os.path.realpath(os.path.join(root, ref))
        if os.path.commonpath([root, path]) != root:
            return Refusal(
                entry, PATH_ESCAPE, f"{ref!r}: resolves outside the image root (a symlink or ..)"
            )
        return path


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead to a host that is not allowed: none is followed."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _fetch(url: str) -> bytes:
    opener = urllib.request.build_opener(_NoRedirect)
    with opener.open(url, timeout=30) as r:  # host checked by the caller
        data: bytes = r.read(MAX_FETCH_BYTES + 1)
    if len(data) > MAX_FETCH_BYTES:
        raise OSError(f"over {MAX_FETCH_BYTES} bytes")
    return data
