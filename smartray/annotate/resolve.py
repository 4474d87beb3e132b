"""Which asset an image reference in a label file means, checked before anything is read.

A reference is a `file_name`, a path or a URL from a label file. It is matched:

1. by an explicit asset id (COCO `asset_id`, Label Studio `data.asset_id`) or a file name
   whose stem is one (`<asset_id>.jpg`, what smartray exports write);
2. otherwise by hashing the file it names: a relative path under `--image-root` (no
   absolute paths, no `..` out of the root, no symlink leaving it), an `s3://` object,
   or an `http(s)://` URL on a host the user allowed.

Label Studio's own paths are matched without an asset id too: an upload
(`/data/upload/<project>/<8 hex>-<name>`) by its original file name, `<name>`, when
exactly one asset was ingested from a file of that name (`asset_sources`); a local-files
path (`/data/local-files/?d=<path>`) by hashing `<path>` under `--image-root` (Label
Studio's document root), or by its file name when no root is given. A name that several
assets have is refused (`ambiguous_image`), listing them.

Any other scheme (`file:`, `ftp:`...) or a host not allowed (`http://169.254.169.254/`)
is refused. Even a reference that comes with an asset id must have an allowed form.
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

from smartray.annotate.model import (
    AMBIGUOUS_IMAGE,
    PATH_ESCAPE,
    UNKNOWN_ASSET,
    URL_NOT_ALLOWED,
    Refusal,
)

_ID = re.compile(r"^[0-9a-f]{64}$")
# Label Studio serves uploaded and local-storage files under these paths
UPLOAD, LOCAL_FILES = "/data/upload/", "/data/local-files/"
LABEL_STUDIO_PATHS = (UPLOAD, LOCAL_FILES)
# Label Studio stores an upload as <8 hex digits>-<original name>
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-")
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
        sources: Loads {file name: [(asset id, source URI), ...]} of the lake's
            `asset_sources` (called once, on the first Label Studio path; None: no
            match by name).
    """

    sizes: dict[str, tuple[int, int]]
    image_root: str | None = None
    allowed_hosts: tuple[str, ...] = ()
    read_s3: Callable[[str], bytes] | None = None
    sources: Callable[[], dict[str, list[tuple[str, str]]]] | None = None
    _cache: dict[str, str | Refusal] = field(default_factory=dict)
    _names: dict[str, list[tuple[str, str]]] | None = None

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
            if ref.startswith(LABEL_STUDIO_PATHS):
                self._cache[ref] = self._label_studio(ref, entry)
            else:
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
        if ref.startswith(UPLOAD):
            return None
        if ref.startswith(LOCAL_FILES):
            path = local_files_path(ref)
            if not path:
                return Refusal(entry, UNKNOWN_ASSET, f"{ref!r}: no ?d=<path> in it")
            return self.check_form(path, entry, has_id=has_id)
        if ref.startswith(("/", "\\")) or os.path.isabs(ref):
            return Refusal(entry, PATH_ESCAPE, f"{ref!r}: absolute paths are not read")
        norm = posixpath.normpath(ref.replace("\\", "/"))
        if norm == ".." or norm.startswith("../"):
            return Refusal(entry, PATH_ESCAPE, f"{ref!r}: leaves the image root")
        return None

    def exists(self, ref: str) -> bool:
        """Whether `ref` names a file under the image root (that may be read)."""
        if self.image_root is None or self.check_form(ref, "", has_id=False) is not None:
            return False
        path = self._inside_root(ref, "")
        return isinstance(path, str) and os.path.isfile(path)

    def _label_studio(self, ref: str, entry: str) -> str | Refusal:
        local = ref.startswith(LOCAL_FILES)
        path = local_files_path(ref) if local else urllib.parse.urlparse(ref).path
        name = posixpath.basename(path)
        original = name if local else _UPLOAD_PREFIX.sub("", name)
        stem = posixpath.splitext(original)[0]
        if is_asset_id(stem) and stem in self.sizes:  # a smartray export, uploaded
            return stem
        if local and self.image_root is not None:
            return self._by_hash(path, entry)
        return self._by_name(original, ref, entry, also=None if local else name)

    def _by_name(self, name: str, ref: str, entry: str, also: str | None = None) -> str | Refusal:
        if self._names is None:
            self._names = self.sources() if self.sources is not None else {}
        for candidate in (name, also):
            found = [(a, uri) for a, uri in self._names.get(candidate or "", []) if a in self.sizes]
            ids = sorted({a for a, _ in found})
            if len(ids) == 1:
                return ids[0]
            if len(ids) > 1:
                listed = "; ".join(f"{a} ({uri})" for a, uri in sorted(found)[:10])
                return Refusal(
                    entry,
                    AMBIGUOUS_IMAGE,
                    f"{ref!r}: {len(ids)} assets were ingested from a file named "
                    f"{candidate!r}: {listed}",
                )
        how = (
            "--image-root (Label Studio's document root), or "
            if ref.startswith(LOCAL_FILES)
            else ""
        )
        return Refusal(
            entry,
            UNKNOWN_ASSET,
            f"{ref!r}: no asset was ingested from a file named {name!r} "
            f"(give {how}tasks with data.asset_id)",
        )

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


def local_files_path(ref: str) -> str:
    """The `d` path of a Label Studio local-files URL (`/data/local-files/?d=a/b.jpg`)."""
    values = urllib.parse.parse_qs(urllib.parse.urlparse(ref).query).get("d") or [""]
    return values[0]


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
