"""Image classification folders: `root/<class name>/<image>` (import only).

Every image file under a class folder (at any depth below it) gets a `class` label of
that folder's name; files directly in the root, hidden files and folders, and files that
are not images (by extension) are skipped. A class folder the ontology does not have is
refused by the ledger's checks (`unknown_class`). Images are found by hashing their
bytes, read under `--image-root`, which defaults to the root itself (a given one must
contain the root). Symlinked folders are not walked; a symlinked file that resolves
outside the image root is refused (`path_escape`). An image in two class folders gets
both labels, for review to settle.
"""

from __future__ import annotations

import logging
import os

from smartray.annotate.formats.base import LabelFileError
from smartray.annotate.model import PATH_ESCAPE, Annotation, Parsed, Refusal
from smartray.annotate.resolve import Resolver

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def under_root(resolver: Resolver, root: str) -> Resolver:
    """`resolver`, or one reading files under `root` if it has no image root."""
    if resolver.image_root is not None:
        return resolver
    return Resolver(
        resolver.sizes,
        image_root=root,
        allowed_hosts=resolver.allowed_hosts,
        read_s3=resolver.read_s3,
    )


def read(path: str, resolver: Resolver) -> Parsed:
    """Reads class folders; images that cannot be imported become refusals."""
    if not os.path.isdir(path):
        raise LabelFileError(f"{path!r}: not a folder (give the root of the class folders)")
    root = os.path.abspath(path)
    resolver = under_root(resolver, root)
    assert resolver.image_root is not None
    image_root = os.path.abspath(resolver.image_root)
    real_root = os.path.realpath(root)
    parsed = Parsed()
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or not entry.is_dir():
            continue
        if entry.is_symlink():
            target = os.path.realpath(entry.path)
            if os.path.commonpath([real_root, target]) != real_root:
                parsed.refusals.append(
                    Refusal(entry.name, PATH_ESCAPE, "a symlinked folder leaving the root")
                )
            else:
                log.info("%s: a symlinked folder, not walked", entry.path)
            continue
        for here, dirs, files in os.walk(entry.path, followlinks=False):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if name.startswith(".") or not name.lower().endswith(IMAGE_EXTENSIONS):
                    continue
                full = os.path.join(here, name)
                where = os.path.relpath(full, root).replace(os.sep, "/")
                ref = os.path.relpath(full, image_root).replace(os.sep, "/")
                found = resolver.resolve(ref, where)
                if isinstance(found, Refusal):
                    parsed.refusals.append(found)
                    continue
                parsed.annotations.append(Annotation.make(found, "class", entry.name))
                parsed.entries.append(where)
    return parsed
