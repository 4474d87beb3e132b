"""Image references over http(s): only allowed hosts, no redirects (a loopback server)."""

import hashlib
import http.server
import threading

import pytest

from smartray.annotate.model import Refusal
from smartray.annotate.resolve import Resolver
from smartray.testing import files

IMAGE = files.png(files.pattern(48, 64, seed=9))


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/img.png":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(IMAGE)
        else:  # everything else redirects to where no label file may send us
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data")
            self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_allowed_host_is_read_by_hash_and_redirects_are_not_followed(server):
    asset = hashlib.sha256(IMAGE).hexdigest()
    allowed = Resolver({asset: (64, 48)}, allowed_hosts=("127.0.0.1",))
    assert allowed.resolve(f"{server}/img.png", "e1") == asset
    moved = allowed.resolve(f"{server}/moved.png", "e2")
    assert isinstance(moved, Refusal)
    assert moved.reason == "unknown_asset"
    assert "302" in moved.detail  # the redirect was answered, not followed
    refused = Resolver({asset: (64, 48)}).resolve(f"{server}/img.png", "e3")
    assert isinstance(refused, Refusal)
    assert refused.reason == "url_not_allowed"
