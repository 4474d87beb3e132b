"""Hostile image references in label files: nothing is read outside the image root, and
nothing is sent beyond loopback.

`import-labels` reads COCO, Label Studio, CVAT and YOLO files whose image references are
`../../etc/passwd`, absolute paths, `file://` URLs, the cloud metadata address, an
allowed loopback URL that redirects to it, symlinks inside the root that point out, and
Label Studio local-files paths that climb out; and CVAT files with a DOCTYPE, an
external entity or an entity bomb. A file outside the root holds the bytes of an asset
of the lake, so reading it would show as a match.

An audit hook (PEP 578) in this process, where the import runs, watches every `open`,
directory listing, socket connection, urllib request and subprocess while an import
runs: an open or listing outside the image root, the label file, the lake and Python's
own files is recorded and refused (PermissionError), as is any connection beyond
loopback (the suite's net guard refuses those in every process as well). Asserted: 0 of
them, 0 requests to 169.254.169.254, and every hostile reference refused with its reason
in the quarantine table (the one good reference is imported).
"""

from __future__ import annotations

import collections
import hashlib
import http.server
import ipaddress
import json
import os
import sys
import threading
from pathlib import Path
from typing import ClassVar

import pytest

from jobs import import_labels as import_job
from jobs import ontology as ontology_job
from smartray import Lake
from smartray.tables import ASSETS, LakeLocation
from smartray.tables.commit import commit_rows
from smartray.testing import files, rows

ONTOLOGY = "schemas/ontologies/animals.yaml"
METADATA = "169.254.169.254"


class Audit:
    """What an import did outside the places it may touch (see the module docstring)."""

    def __init__(self) -> None:
        self.active = False
        self.allowed: list[str] = []
        self.outside: list[tuple[str, str]] = []  # (event, path) refused
        self.connections: list[str] = []  # beyond loopback, refused
        self.urls: list[str] = []
        self.processes: list[str] = []
        self.busy = False

    def start(self, allowed: list[str]) -> None:
        self.allowed = [os.path.realpath(p) for p in allowed]
        self.outside, self.connections, self.urls, self.processes = [], [], [], []
        self.active = True

    def stop(self) -> None:
        self.active = False

    def _inside(self, path: object) -> bool:
        if isinstance(path, int):
            return True  # an open descriptor: its path was checked when it was opened
        if isinstance(path, bytes):
            path = path.decode(errors="replace")
        real = os.path.realpath(os.fspath(path))  # type: ignore[arg-type]
        return any(real == a or real.startswith(a + os.sep) for a in self.allowed)

    def hook(self, event: str, args: tuple) -> None:
        if not self.active or self.busy:
            return
        self.busy = True
        try:
            if event == "open" or event in ("os.listdir", "os.scandir"):
                path = args[0] if args else "."
                if path is None:
                    path = "."
                if not self._inside(path):
                    self.outside.append((event, str(path)))
                    raise PermissionError(f"audit: {event} {path!r} is outside the image root")
            elif event == "socket.connect":
                sock, address = args[0], args[1]
                host = address[0] if isinstance(address, tuple) else address
                if sock.family in (2, 10) and not ipaddress.ip_address(host).is_loopback:
                    self.connections.append(repr(address))
                    raise PermissionError(f"audit: connection to {address!r} refused")
            elif event == "urllib.Request":
                self.urls.append(str(args[0]))
            elif event in ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn"):
                self.processes.append(repr(args[:2]))
        finally:
            self.busy = False


AUDIT = Audit()
sys.addaudithook(AUDIT.hook)


class Redirector(http.server.BaseHTTPRequestHandler):
    """Answers every GET with a redirect to the cloud metadata address."""

    requests: ClassVar[list[str]] = []

    def do_GET(self):
        Redirector.requests.append(self.path)
        self.send_response(302)
        self.send_header("Location", f"http://{METADATA}/latest/meta-data/iam/")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def redirector():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Redirector.requests = []
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def world(tmp_path):
    """A lake of 4 image assets under `root/`, plus `outside/secret.png` (its bytes are an
    asset too: a read of it would match), and symlinks in the root that point out."""
    lake_dir, root, outside = tmp_path / "lake", tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    blobs = {f"img{i}.png": files.png(files.pattern(48, 64, seed=i)) for i in range(4)}
    for name, data in blobs.items():
        (root / name).write_bytes(data)
    secret = files.png(files.pattern(48, 64, seed=99))
    (outside / "secret.png").write_bytes(secret)
    (root / "escape.png").symlink_to(outside / "secret.png")
    (root / "passwd.png").symlink_to("/etc/passwd")
    (root / "etc").symlink_to("/etc")
    (root / "out").symlink_to(outside)
    ids = [hashlib.sha256(d).hexdigest() for d in [*blobs.values(), secret]]
    table = rows(ASSETS, n=len(ids))
    table = table.set_column(0, "asset_id", [ids])
    for name, value in (("width", 64), ("height", 48), ("format", "png")):
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, [[value] * len(ids)])
    i = table.schema.get_field_index("data")
    table = table.set_column(i, "data", [[*blobs.values(), secret]])
    commit_rows(LakeLocation.from_uri(str(lake_dir)), ASSETS, ASSETS.cast(table), app_id="seed")
    ontology_job.main(["add", ONTOLOGY, "--lake", str(lake_dir)])
    return tmp_path, lake_dir, root, outside


def hostile_refs(tmp_path: Path, redirect_host: str) -> dict[str, str]:
    """{reference: reason it must be refused with}."""
    secret = str(tmp_path / "outside" / "secret.png")
    return {
        "../../etc/passwd": "path_escape",
        "../outside/secret.png": "path_escape",
        "img0.png/../../outside/secret.png": "path_escape",
        "..\\outside\\secret.png": "path_escape",
        "/etc/passwd": "path_escape",
        secret: "path_escape",
        "file:///etc/passwd": "url_not_allowed",
        "file://localhost" + secret: "url_not_allowed",
        "FILE:///etc/passwd": "url_not_allowed",
        f"http://{METADATA}/latest/meta-data/": "url_not_allowed",
        "http://[::ffff:169.254.169.254]/latest/meta-data/": "url_not_allowed",
        f"http://{redirect_host}/img0.png": "unknown_asset",  # allowed host; no redirect
        "escape.png": "path_escape",
        "passwd.png": "path_escape",
        "etc/passwd": "path_escape",
        "out/secret.png": "path_escape",
        "/data/local-files/?d=../outside/secret.png": "path_escape",
        "/data/local-files/?d=/etc/passwd": "path_escape",
        "/data/local-files/?d=out/secret.png": "path_escape",
    }


def coco(refs: list[str]) -> str:
    images = [{"id": i + 1, "file_name": r, "width": 64, "height": 48} for i, r in enumerate(refs)]
    anns = [
        {"id": i + 1, "image_id": i + 1, "category_id": 1, "bbox": [4, 4, 20, 10]}
        for i in range(len(refs))
    ]
    return json.dumps({"images": images, "annotations": anns, "categories": [
        {"id": 1, "name": "cat"}]})  # fmt: skip


def labelstudio(refs: list[str]) -> str:
    box = {"x": 10, "y": 10, "width": 20, "height": 20, "rectanglelabels": ["cat"]}
    result = {"type": "rectanglelabels", "from_name": "label", "to_name": "image",
              "original_width": 64, "original_height": 48, "value": box}  # fmt: skip
    tasks = [
        {"id": i + 1, "data": {"image": r}, "annotations": [{"result": [result]}]}
        for i, r in enumerate(refs)
    ]
    return json.dumps(tasks)


def cvat(refs: list[str]) -> str:
    from xml.sax.saxutils import quoteattr

    images = "".join(
        f'<image id="{i}" name={quoteattr(r)} width="64" height="48">'
        '<box label="cat" xtl="1" ytl="1" xbr="9" ybr="9"/></image>'
        for i, r in enumerate(refs)
    )
    return f'<?xml version="1.0"?><annotations>{images}</annotations>'


WRITERS = {"coco": (coco, "labels.json"), "labelstudio": (labelstudio, "tasks.json"),
           "cvat": (cvat, "annotations.xml")}  # fmt: skip


def run_import(lake_dir, path, fmt, root, allowed_extra=(), *extra) -> int:
    """Runs `import-labels` under the audit; returns its exit code."""
    here = [p for p in sys.path if p and os.path.isdir(p)]
    allowed = [root, str(lake_dir), str(path), *here, sys.prefix, sys.base_prefix,
               *allowed_extra, "/dev/null"]  # fmt: skip
    AUDIT.start(allowed)
    try:
        import_job.main([str(path), "--format", fmt, "--annotator", f"ann-{fmt}",
                         "--lake", str(lake_dir), "--image-root", str(root), *extra])  # fmt: skip
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    finally:
        AUDIT.stop()
    return code


def label_import_rows(lake_dir) -> list[dict]:
    lake = Lake(str(lake_dir))
    if not lake.exists("quarantine"):
        return []
    return [r for r in lake.table("quarantine").to_pylist() if r["stage"] == "label_import"]


def test_hostile_references_read_nothing_outside_the_root(world, redirector, figures):
    tmp_path, lake_dir, root, _ = world
    hostile = hostile_refs(tmp_path, redirector)
    refs = ["img0.png", *hostile]  # one good reference: the import itself works
    counts = collections.Counter()
    refused: dict[str, dict[str, str]] = {}
    for fmt, (write, name) in WRITERS.items():
        path = tmp_path / fmt / name
        path.parent.mkdir()
        path.write_text(write(refs))
        before = {r["quarantine_id"] for r in label_import_rows(lake_dir)}
        code = run_import(lake_dir, path, fmt, str(root), (), "--allow-host", "127.0.0.1")
        assert code == 0, fmt
        counts["opens_outside"] += len(AUDIT.outside)
        counts["connections_beyond_loopback"] += len(AUDIT.connections)
        counts["requests_to_metadata"] += sum(METADATA in u for u in AUDIT.urls)
        counts["processes"] += len(AUDIT.processes)
        assert AUDIT.outside == [], fmt
        assert AUDIT.connections == [], fmt
        assert AUDIT.processes == [], fmt
        assert not [u for u in AUDIT.urls if METADATA in u], fmt
        new = [r for r in label_import_rows(lake_dir) if r["quarantine_id"] not in before]
        # The image-level refusal of each reference (its objects are refused with it).
        by_ref = {}
        for i, ref in enumerate(refs):
            mine = [r for r in new if _names_image(r["detail"], fmt, i, ref)]
            by_ref[ref] = sorted({r["reason"] for r in mine})
        refused[fmt] = {ref: ",".join(v) for ref, v in by_ref.items()}
        assert by_ref["img0.png"] == [], (fmt, by_ref["img0.png"])
        got = {ref: by_ref[ref] for ref in hostile}
        assert got == {ref: [reason] for ref, reason in hostile.items()}, fmt
        events = Lake(str(lake_dir)).table("label_events").to_pylist()
        assert sum(e["annotator"] == f"ann-{fmt}" for e in events) == 1, fmt
    counts["loopback_redirect_requests"] = len(Redirector.requests)
    # The allowed loopback URL was asked once per format; its redirect never followed.
    assert len(Redirector.requests) == len(WRITERS)
    figures.record(
        "test_annotation_paths",
        formats=len(WRITERS),
        hostile_references=len(hostile),
        refused=len(hostile) * len(WRITERS),
        by_reason=dict(collections.Counter(hostile.values())),
        **counts,
    )


def _names_image(detail: str, fmt: str, i: int, ref: str) -> bool:
    """Whether a quarantine detail is about the i-th image/task of the file."""
    heads = {"coco": f"images[{i}]", "labelstudio": f"tasks[{i}] (id {i + 1})",
             "cvat": f"image[{i}]"}  # fmt: skip
    return detail.startswith(heads[fmt] + " ") or detail.startswith(heads[fmt] + ":")


def test_the_audit_refuses_and_counts_what_it_sees(tmp_path):
    (tmp_path / "inside.txt").write_text("x")
    AUDIT.start([str(tmp_path)])
    try:
        assert (tmp_path / "inside.txt").read_text() == "x"
        with pytest.raises(PermissionError, match="outside the image root"):
            open("/etc/passwd", "rb")  # noqa: SIM115
        with pytest.raises(PermissionError, match="outside the image root"):
            os.listdir("/etc")
    finally:
        AUDIT.stop()
    assert AUDIT.outside == [("open", "/etc/passwd"), ("os.listdir", "/etc")]


def yolo_dataset(base: Path, labels: dict[str, str]) -> Path:
    (base / "labels").mkdir(parents=True)
    (base / "data.yaml").write_text("names: [cat, dog, bird]\n")
    for stem, text in labels.items():
        (base / "labels" / f"{stem}.txt").write_text(text)
    return base


def test_yolo_symlinks_out_of_the_dataset_read_nothing_outside(world, figures):
    tmp_path, lake_dir, root, outside = world
    box = "0 0.5 0.5 0.25 0.5\n"
    # images/ in the dataset: a good image, one linking out; a label file linking out
    a = yolo_dataset(tmp_path / "yolo-a", {"good": box, "escape": box})
    (a / "images").mkdir()
    (a / "images" / "good.png").write_bytes((root / "img1.png").read_bytes())
    (a / "images" / "escape.png").symlink_to(outside / "secret.png")
    (a / "labels" / "passwd.txt").symlink_to("/etc/passwd")
    (a / "images" / "passwd.png").write_bytes((root / "img2.png").read_bytes())
    # images/ itself a link out of the dataset
    b = yolo_dataset(tmp_path / "yolo-b", {"secret": box})
    (b / "images").symlink_to(outside)
    # a Darknet obj.data naming /etc/passwd as its class names
    c = tmp_path / "yolo-c"
    (c / "obj_train_data").mkdir(parents=True)
    (c / "obj.data").write_text("classes = 3\nnames = /etc/passwd\n")
    counts = collections.Counter()
    for ds, expect_code in ((a, 0), (b, 0), (c, 2)):
        before = {r["quarantine_id"] for r in label_import_rows(lake_dir)}
        code = run_import(lake_dir, ds, "yolo", str(ds))
        counts["opens_outside"] += len(AUDIT.outside)
        counts["connections_beyond_loopback"] += len(AUDIT.connections)
        assert (ds.name, code) == (ds.name, expect_code)
        assert (ds.name, AUDIT.outside) == (ds.name, [])
        assert AUDIT.connections == []
        new = [r for r in label_import_rows(lake_dir) if r["quarantine_id"] not in before]
        counts[f"{ds.name}_refused"] = len(new)
        if ds is a:
            reasons = {r["detail"].split(":")[0]: r["reason"] for r in new}
            assert reasons["labels/escape.txt"] == "path_escape"
            assert reasons["labels/passwd.txt"] == "path_escape"
            events = Lake(str(lake_dir)).table("label_events").to_pylist()
            assert sum(e["annotator"] == "ann-yolo" for e in events) == 1
        if ds is b:
            assert {r["reason"] for r in new} == {"path_escape"}
    figures.record("test_annotation_paths_yolo", datasets=3, **counts)


DOCTYPES = {
    "xxe-file": '<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    '<annotations><image id="0" name="&x;"/></annotations>',
    "xxe-metadata": f'<!DOCTYPE a [<!ENTITY x SYSTEM "http://{METADATA}/latest/meta-data/">]>'
    '<annotations><image id="0" name="&x;"/></annotations>',
    "external-dtd": f'<!DOCTYPE a SYSTEM "http://{METADATA}/evil.dtd">'
    '<annotations><image id="0" name="img0.png"/></annotations>',
    "parameter-entity": f'<!DOCTYPE a [<!ENTITY % p SYSTEM "http://{METADATA}/p.dtd"> %p;]>'
    "<annotations/>",
    "billion-laughs": '<!DOCTYPE a [<!ENTITY l0 "lol">'
    + "".join(f'<!ENTITY l{i} "{("&l" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    + ']><annotations><image id="0" name="&l9;"/></annotations>',
}


def test_cvat_files_with_entities_are_refused_whole(world, figures):
    tmp_path, lake_dir, root, _ = world
    for name, body in DOCTYPES.items():
        path = tmp_path / f"{name}.xml"
        path.write_text('<?xml version="1.0"?>' + body)
        code = run_import(lake_dir, path, "cvat", str(root))
        assert (name, code) == (name, 2)
        assert (name, AUDIT.outside, AUDIT.connections) == (name, [], [])
        assert not [u for u in AUDIT.urls if METADATA in u]
    assert not Lake(str(lake_dir)).exists("label_events")
    figures.record(
        "test_annotation_paths_cvat_entities", files=len(DOCTYPES), refused_whole=len(DOCTYPES),
        opens_outside=0, connections_beyond_loopback=0,
    )  # fmt: skip
