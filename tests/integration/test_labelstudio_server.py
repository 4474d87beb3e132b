"""The real Label Studio on loopback: tasks in, annotations through its API, its own export out."""

import base64
import fcntl
import socket
import struct
import uuid

from smartray.testing import files

LABEL_CONFIG = """
<View>
  <Image name="image" value="$image"/>
  <Choices name="label" toName="image" choice="single">
    <Choice value="cat"/>
    <Choice value="dog"/>
  </Choices>
  <RectangleLabels name="box" toName="image">
    <Label value="cat"/>
    <Label value="dog"/>
  </RectangleLabels>
</View>
"""


def annotation(choice, box):
    """What an annotator's submit sends: one choice and one box in percent of the image."""
    x, y, w, h = box
    common = {"to_name": "image", "original_width": 32, "original_height": 24, "image_rotation": 0}
    return [
        {**common, "id": "c1", "from_name": "label", "type": "choices",
         "value": {"choices": [choice]}},
        {**common, "id": "b1", "from_name": "box", "type": "rectanglelabels",
         "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0,
                   "rectanglelabels": [choice]}},
    ]  # fmt: skip


def _ipv4_addresses():
    """Every IPv4 address of this machine's interfaces (Linux: SIOCGIFADDR)."""
    found = set()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _, name in socket.if_nameindex():
            try:
                req = struct.pack("256s", name.encode()[:15])
                found.add(socket.inet_ntoa(fcntl.ioctl(s.fileno(), 0x8915, req)[20:24]))
            except OSError:  # no IPv4 address on this interface
                continue
    return found


def _listeners(port):
    """Local addresses (hex, as /proc writes them) of the sockets listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(addr)
    return found


def test_label_studio_round_trip_and_loopback_only(label_studio):
    client = label_studio.client()
    project = client.create_project(f"smartray {uuid.uuid4().hex[:8]}", LABEL_CONFIG)
    image = "data:image/png;base64," + base64.b64encode(files.png(files.pattern(24, 32))).decode()
    want = {"abc": annotation("cat", (10.0, 20.0, 30.5, 40.25)),
            "xyz": annotation("dog", (0.0, 0.0, 100.0, 50.0))}  # fmt: skip
    tasks = [{"data": {"image": image, "asset_id": asset}} for asset in want]
    assert client.import_tasks(project, tasks) == 2

    tasks = client.list_tasks(project)
    assert sorted(t["data"]["asset_id"] for t in tasks) == sorted(want)
    for task in tasks:
        client.create_annotation(task["id"], want[task["data"]["asset_id"]])

    exported = client.export(project, "JSON")
    assert len(exported) == 2
    for task in exported:
        assert task["data"]["image"] == image
        [ann] = task["annotations"]
        assert not ann["was_cancelled"]
        assert ann["completed_by"] is not None
        expected = want[task["data"]["asset_id"]]
        assert sorted(ann["result"], key=lambda r: r["type"]) == sorted(
            expected, key=lambda r: r["type"]
        )

    # The server listens on 127.0.0.1 only: no socket on another address, none reachable.
    port = int(label_studio.url.rsplit(":", 1)[1])
    assert label_studio.url.startswith("http://127.0.0.1:")
    listeners = _listeners(port)
    assert listeners, f"nothing listens on port {port}"
    assert set(listeners) == {"0100007F"}, listeners  # 127.0.0.1, little-endian hex
    for addr in _ipv4_addresses() - {"127.0.0.1"}:
        if addr.startswith("127."):
            continue
        with socket.socket() as s:
            s.settimeout(5)
            assert s.connect_ex((addr, port)) != 0, f"Label Studio answers on {addr}:{port}"
