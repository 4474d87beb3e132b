"""Local folders: recursive listing that refuses symlinks leaving the root, and reads."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

from smartray.errors import SourceError
from smartray.sources.base import Listing, SourceEntry
from smartray.types import Reason, RejectedInput


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def list_local(sources: Iterable[str]) -> Listing:
    """Lists every regular file under the given folders (recursively) or files.

    Hidden files and folders (names starting with ".") are not inputs. A symlink is
    followed only while its target stays inside the source root; otherwise it is listed
    as an `outside_root` rejection, as is a link to a directory outside. A dangling link
    or a file that cannot be stat'ed is `unreadable`.

    Raises:
        SourceError: a source path does not exist.
    """
    listing = Listing()
    for source in sources:
        add_local(source, listing)
    return listing.deduplicated()


def add_local(source: str, listing: Listing) -> None:
    """Adds one local folder or file to `listing` (see `list_local`)."""
    path = os.path.abspath(os.path.expanduser(source))
    if not os.path.lexists(path):
        raise SourceError(f"source {source!r} does not exist")
    if os.path.isdir(path):
        root = os.path.realpath(path)
        _walk(path, root, listing, visited={root})
    else:
        _add_file(path, os.path.realpath(os.path.dirname(path)), listing)


def _walk(folder: str, root: str, listing: Listing, visited: set[str]) -> None:
    try:
        children = sorted(os.scandir(folder), key=lambda d: d.name)
    except OSError as e:
        listing.reject(folder, Reason.UNREADABLE, f"folder cannot be listed: {e.strerror or e}")
        return
    for child in children:
        if child.name.startswith("."):
            continue
        path = os.path.join(folder, child.name)
        if child.is_symlink():
            target = os.path.realpath(path)
            if not _inside(target, root):
                listing.reject(
                    path, Reason.OUTSIDE_ROOT, f"symlink leaves the source root {root!r}"
                )
                continue
            if os.path.isdir(target):
                if target not in visited:
                    visited.add(target)
                    _walk(path, root, listing, visited)
                continue
            _add_file(path, root, listing)
        elif child.is_dir(follow_symlinks=False):
            real = os.path.realpath(path)
            if real not in visited:
                visited.add(real)
                _walk(path, root, listing, visited)
        else:
            _add_file(path, root, listing)


def _add_file(path: str, root: str, listing: Listing) -> None:
    if os.path.islink(path) and not _inside(os.path.realpath(path), root):
        listing.reject(path, Reason.OUTSIDE_ROOT, f"symlink leaves the source root {root!r}")
        return
    try:
        st = os.stat(path)
    except OSError as e:
        listing.reject(path, Reason.UNREADABLE, f"stat failed: {e.strerror or e}")
        return
    if not stat.S_ISREG(st.st_mode):
        listing.reject(path, Reason.UNSUPPORTED_FORMAT, "not a regular file")
        return
    listing.entries.append(
        SourceEntry(uri=path, size=st.st_size, mtime_ns=st.st_mtime_ns, root=root)
    )


class LocalReader:
    """Reads local files named by their absolute path, re-checking the root first.

    The check resolves each folder once per reader (a reader travels to each Ray task
    afresh) and the file itself every time: `realpath` of every input cost ~0.05 ms, a
    seventh of the work of a 28 px image.
    """

    def __getstate__(self) -> dict[str, object]:
        return {k: v for k, v in self.__dict__.items() if k != "_folders"}

    def _resolve(self, path: str) -> str:
        """`os.path.realpath(path)`, with the folder's resolution remembered."""
        if os.path.islink(path):
            return os.path.realpath(path)
        folders: dict[str, str] = self.__dict__.setdefault("_folders", {})
        head, tail = os.path.split(path)
        folder = folders.get(head)
        if folder is None:
            folder = folders[head] = os.path.realpath(head)
        return os.path.join(folder, tail)

    def read(self, entry: SourceEntry, max_bytes: int | None = None) -> bytes:
        """The file's bytes (at most `max_bytes` + 1 of them are read).

        Raises:
            RejectedInput: `outside_root` if the path now resolves outside its root,
                `unreadable` if the read fails.
        """
        if entry.root and not _inside(self._resolve(entry.uri), entry.root):
            raise RejectedInput(
                Reason.OUTSIDE_ROOT, f"resolves outside the source root {entry.root!r}"
            )
        try:
            return self.read_file(entry.uri, max_bytes)
        except OSError as e:
            raise RejectedInput(Reason.UNREADABLE, f"read failed: {e.strerror or e}") from None

    def read_file(self, path: str, max_bytes: int | None = None) -> bytes:
        """Reads a file, up to `max_bytes` + 1 bytes; `OSError` becomes `unreadable`.

        The first read asks for the size the file has now (plus one byte, to see that
        it grew): `read(max_bytes + 1)` would allocate the whole limit for every file,
        which cost more than reading a small image.
        """
        limit = None if max_bytes is None else max_bytes + 1
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size + 1
            first = size if limit is None else min(size, limit)
            data = f.read(first)
            if len(data) == first and (limit is None or first < limit):  # it grew meanwhile
                data += f.read(-1 if limit is None else limit - first)
            return data
