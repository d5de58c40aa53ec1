"""`archivist models fetch` against a real HTTP server on the loopback address.

The server hands out a tiny real model file; it can drop the connection mid-file once, ignore
Range requests, or serve bytes the catalog does not expect.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from archivist_tui.cli import main
from engine.errors import ArchivistError
from engine.models import compact
from engine.models import fetch as fetcher
from engine.models.catalog import CatalogEntry, find_entry, load_catalog
from engine.models.files import export_pth, load_model
from engine.models.library import Library


class ModelServer:
    """A threaded HTTP server on 127.0.0.1 serving byte strings by path."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.ignore_range = False
        self.drop_after: int | None = None  # close the socket after this many body bytes, once
        self.stall_after: int | None = None  # go silent after this many body bytes, once, until released
        self.stalling = threading.Event()  # set while a response is held silent
        self.release_stall = threading.Event()
        self.range_offset = 0  # answer a Range request from this many bytes off what was asked
        self.requests: list[tuple[str, str | None, int]] = []  # (path, Range header, status)
        self.closed = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_GET(self):
                data = server.files.get(self.path)
                rng = self.headers.get("Range")
                if data is None:
                    server.requests.append((self.path, rng, 404))
                    self.send_error(404)
                    return
                m = re.match(r"bytes=(\d+)-$", rng or "")
                if m and not server.ignore_range:
                    start = int(m.group(1)) + server.range_offset
                    if start >= len(data):
                        server.requests.append((self.path, rng, 416))
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    body, status = data[start:], 206
                else:
                    start, body, status = 0, data, 200
                server.requests.append((self.path, rng, status))
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body)))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if server.drop_after is not None:
                    cut, server.drop_after = server.drop_after, None
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if server.stall_after is not None:
                    cut, server.stall_after = server.stall_after, None
                    server.stalling.set()  # before the bytes: the client cannot see them earlier
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    server.release_stall.wait(120)  # silent until the test lets go, however slow the client
                    server.stalling.clear()
                    return
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.release_stall.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def tiny_pth(tmp_path):
    """A real tiny Compact (8/2×1) saved as a Real-ESRGAN .pth: (bytes, network)."""
    torch.manual_seed(3)
    net = compact.build(compact.spec_for(8, 2, 1)).eval()
    path = tmp_path / "tiny_src.pth"
    export_pth(path, net.state_dict())
    return path.read_bytes(), net


@pytest.fixture
def server(tiny_pth):
    srv = ModelServer()
    srv.files["/models/Tiny_Medium.pth"] = tiny_pth[0]
    yield srv
    srv.close()


def write_catalog(tmp_path, monkeypatch, models: list[dict]) -> None:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"models": models}))
    monkeypatch.setenv("ARCHIVIST_CATALOG", str(path))


@pytest.fixture
def catalog(tmp_path, monkeypatch, server, tiny_pth):
    """A catalog with one verified entry `tiny` pointing at the loopback server; returns a re-writer."""
    data = tiny_pth[0]

    def make(**overrides):
        entry = dict(name="tiny", role="medium", arch="compact", url=server.url("/models/Tiny_Medium.pth"),
                     bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
        entry.update(overrides)
        write_catalog(tmp_path, monkeypatch, [entry])
        return entry

    make()
    return make


def part_file(name="tiny"):
    return fetcher.part_path(find_entry(name), Library())


def same_output(net_a, net_b) -> bool:
    x = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.equal(net_a(x), net_b(x))


# -- engine -----------------------------------------------------------------------------------------

def test_shipped_catalog_is_the_reference(monkeypatch):
    monkeypatch.delenv("ARCHIVIST_CATALOG", raising=False)
    entries = {e.name: e for e in load_catalog()}
    assert set(entries) == {"archivist-antilines", "archivist-rough", "archivist-medium", "archivist-soft",
                            "archivist-rgb", "drunet-color"}
    medium = entries["archivist-medium"]
    assert medium.role == "medium" and medium.bytes == 1360537 and medium.verified
    assert medium.sha256 == "b94d1fac8873e6bc45cbe8174d0186217a0f2bd4a7a3a103535f6f01972a4b13"
    assert medium.filename == "Archivist_Medium.pth"
    assert entries["archivist-soft"].bytes == 2721289
    drunet = entries["drunet-color"]
    assert drunet.role == "denoise" and not drunet.verified and drunet.bytes is None
    assert drunet.url.endswith("/drunet_color.pth")


def test_good_fetch(catalog, server, tiny_pth):
    data, net = tiny_pth
    calls = []
    result = fetcher.fetch("tiny", progress=lambda done, total: calls.append((done, total)))
    assert result.verified and not result.skipped and result.resumed_from == 0
    assert result.file_sha256 == hashlib.sha256(data).hexdigest() and result.size == len(data)
    assert calls[-1] == (len(data), len(data))
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
    entry = Library().get("tiny")
    assert (entry.role, entry.arch, entry.num_feat, entry.num_conv, entry.scale) == ("medium", "compact", 8, 2, 1)
    assert entry.source == server.url("/models/Tiny_Medium.pth")
    assert entry.metadata["file_sha256"] == result.file_sha256 and entry.metadata["checksum_verified"] is True
    assert same_output(load_model(entry.path).module, net)
    # Nothing left behind in the download area, and the library lists just the model.
    assert list((Library().root / ".downloads").iterdir()) == []
    assert [e.name for e in Library().list() if not e.builtin] == ["tiny"]
    assert server.requests == [("/models/Tiny_Medium.pth", None, 200)]


def test_wrong_checksum_is_an_error_and_deletes_the_partial_file(catalog, tiny_pth):
    catalog(sha256="ab" * 32)
    actual = hashlib.sha256(tiny_pth[0]).hexdigest()
    with pytest.raises(ArchivistError) as err:
        fetcher.fetch("tiny")
    msg = str(err.value)
    assert "checksum mismatch" in msg and "ab" * 32 in msg and actual in msg
    assert not part_file().exists()
    assert Library().find("tiny") is None


@pytest.mark.parametrize("delta", [+10, -10])
def test_wrong_size_is_an_error_and_deletes_the_partial_file(catalog, tiny_pth, delta):
    size = len(tiny_pth[0])
    catalog(bytes=size + delta)
    with pytest.raises(ArchivistError) as err:
        fetcher.fetch("tiny")
    msg = str(err.value)
    assert "size mismatch" in msg and str(size + delta) in msg and str(size) in msg
    assert not part_file().exists()
    assert Library().find("tiny") is None


def test_dropped_connection_keeps_the_part_and_a_second_fetch_resumes(catalog, server, tiny_pth):
    data, net = tiny_pth
    server.drop_after = 3000
    with pytest.raises(fetcher.DownloadInterrupted) as err:
        fetcher.fetch("tiny")
    msg = str(err.value)
    assert "3000 of" in msg and "run the same command again to resume" in msg and str(part_file()) in msg
    assert part_file().read_bytes() == data[:3000]
    assert Library().find("tiny") is None

    calls = []
    result = fetcher.fetch("tiny", progress=lambda d, t: calls.append((d, t)))
    assert result.resumed_from == 3000
    assert server.requests[-1] == ("/models/Tiny_Medium.pth", "bytes=3000-", 206)
    assert calls[0] == (3000, len(data)) and calls[-1] == (len(data), len(data))
    assert not part_file().exists()
    assert same_output(load_model(Library().get("tiny").path).module, net)


def test_server_ignoring_range_restarts_from_zero(catalog, server, tiny_pth):
    data, net = tiny_pth
    server.drop_after = 2500
    with pytest.raises(fetcher.DownloadInterrupted):
        fetcher.fetch("tiny")
    server.ignore_range = True
    result = fetcher.fetch("tiny")
    assert server.requests[-1] == ("/models/Tiny_Medium.pth", "bytes=2500-", 200)
    assert result.resumed_from == 0 and result.size == len(data) and result.verified
    assert same_output(load_model(Library().get("tiny").path).module, net)


def test_wrong_range_answer_discards_the_part(catalog, server, tiny_pth):
    data, _ = tiny_pth
    server.drop_after = 3000
    with pytest.raises(fetcher.DownloadInterrupted):
        fetcher.fetch("tiny")
    server.range_offset = -100
    with pytest.raises(fetcher.DownloadInterrupted, match="different byte range"):
        fetcher.fetch("tiny")
    assert not part_file().exists()
    server.range_offset = 0
    result = fetcher.fetch("tiny")
    assert result.resumed_from == 0 and result.size == len(data)


def test_stale_part_past_the_end_restarts(catalog, server, tiny_pth):
    data, _ = tiny_pth
    catalog(bytes=None, sha256=None)  # no size in the catalog: the server's 416 is what tells
    part_file().write_bytes(data + b"junk")
    result = fetcher.fetch("tiny")
    assert [r[2] for r in server.requests] == [416, 200]
    assert result.size == len(data) and not result.verified


def test_http_error_and_unreachable_server(catalog, server):
    catalog(url=server.url("/missing.pth"))
    with pytest.raises(ArchivistError, match="HTTP 404"):
        fetcher.fetch("tiny")
    port = server.httpd.server_address[1]
    server.close()
    catalog(url=f"http://127.0.0.1:{port}/models/Tiny_Medium.pth")
    with pytest.raises(fetcher.DownloadInterrupted, match="cannot reach"):
        fetcher.fetch("tiny")


def test_stalled_server_times_out_and_resumes(catalog, server, tiny_pth):
    server.stall_after = 2000
    with pytest.raises(fetcher.DownloadInterrupted, match="connection dropped after 2000 of .*resume"):
        fetcher.fetch("tiny", timeout=0.3)
    assert server.stalling.is_set()  # the client gave up by its own timeout, not because the server hung up
    server.release_stall.set()
    assert part_file().stat().st_size == 2000
    assert fetcher.fetch("tiny", timeout=60).resumed_from == 2000


def test_a_second_concurrent_fetch_is_refused(catalog):
    import fcntl

    part = part_file()
    with open(part, "ab") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        with pytest.raises(ArchivistError, match="another fetch of this model is running"):
            fetcher.fetch("tiny")
    assert fetcher.fetch("tiny").model.name == "tiny"


def test_failed_start_leaves_no_empty_part(catalog, server):
    catalog(url=server.url("/missing.pth"))
    with pytest.raises(ArchivistError, match="HTTP 404"):
        fetcher.fetch("tiny")
    assert not part_file().exists()


def test_fetch_all_engine(tmp_path, monkeypatch, server, tiny_pth):
    data = tiny_pth[0]
    url = server.url("/models/Tiny_Medium.pth")
    write_catalog(tmp_path, monkeypatch, [
        dict(name="a", role="rough", url=url, bytes=len(data), sha256=hashlib.sha256(data).hexdigest()),
        dict(name="b", role="soft", url=server.url("/gone.pth")),
    ])
    first = fetcher.fetch_all()
    assert isinstance(first[0], fetcher.FetchResult) and first[0].model.role == "rough"
    assert isinstance(first[1], ArchivistError) and "HTTP 404" in str(first[1])
    second = fetcher.fetch_all()
    assert second[0].skipped and isinstance(second[1], ArchivistError)
    status = {r["name"]: r for r in fetcher.catalog_status()}
    assert status["a"]["installed"] and status["a"]["installed_source"] == url
    assert not status["b"]["installed"] and not status["b"]["verified"]


def test_existing_name_needs_force(catalog):
    fetcher.fetch("tiny")
    with pytest.raises(ArchivistError, match="; use force to download and replace it$"):
        fetcher.fetch("tiny")
    assert fetcher.fetch("tiny", force=True).model.name == "tiny"


def test_catalog_validation_names_file_and_key(tmp_path, monkeypatch):
    write_catalog(tmp_path, monkeypatch, [dict(name="x", role="medium", url="ftp://host/x.pth")])
    with pytest.raises(ArchivistError, match=r"catalog\.json: models\[0\]: url"):
        load_catalog()
    write_catalog(tmp_path, monkeypatch, [dict(name="x", role="sharpen", url="http://h/x.pth")])
    with pytest.raises(ArchivistError, match="invalid role 'sharpen'"):
        load_catalog()
    write_catalog(tmp_path, monkeypatch, [dict(name="x", role="medium", url="http://h/x.pth", sha256="abc")])
    with pytest.raises(ArchivistError, match="sha256 'abc' must be 64"):
        load_catalog()
    with pytest.raises(ArchivistError, match="no model named 'y' in the catalog; known are: x"):
        find_entry("y", [CatalogEntry("x", "medium", "http://h/x.pth")])


# -- command line -----------------------------------------------------------------------------------

def test_cli_fetch_then_list(catalog, capsys):
    assert main(["models", "fetch", "--list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["installed"], r["verified"]) for r in rows] == [("tiny", False, True)]

    assert main(["models", "fetch", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "fetched tiny: compact 8/2×1" in out and "sha256 verified" in out

    assert main(["models", "fetch", "--list"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["NAME", "ROLE", "ARCH", "SIZE", "VERIFIED", "IN", "LIBRARY"]
    assert re.search(r"^tiny\s+medium\s+compact\s+\S+ MB\s+yes\s+yes$", out, re.M)
    assert main(["models", "list", "--json"]) == 0
    assert [m["name"] for m in json.loads(capsys.readouterr().out) if not m["builtin"]] == ["tiny"]


def test_cli_all_fetches_everything_and_warns_for_unverified(tmp_path, monkeypatch, server, tiny_pth, capsys):
    data = tiny_pth[0]
    url = server.url("/models/Tiny_Medium.pth")
    write_catalog(tmp_path, monkeypatch, [
        dict(name="tiny-a", role="medium", url=url, bytes=len(data), sha256=hashlib.sha256(data).hexdigest()),
        dict(name="tiny-b", role="soft", url=url, bytes=None, sha256=None),
    ])
    assert main(["models", "fetch", "--all"]) == 0
    out, err = capsys.readouterr()
    assert "fetched tiny-a" in out and "fetched tiny-b" in out
    assert "warning: tiny-b: the catalog has no checksum" in err and "tiny-a" not in err
    assert "NOT verified" in out
    assert {(e.name, e.role) for e in Library().list() if not e.builtin} == {("tiny-a", "medium"), ("tiny-b", "soft")}
    n = len(server.requests)
    assert main(["models", "fetch", "--all"]) == 0  # nothing left to do
    assert "tiny-a: in the library already" in capsys.readouterr().out
    assert len(server.requests) == n


def test_cli_all_goes_on_after_a_failure(tmp_path, monkeypatch, server, tiny_pth, capsys):
    data = tiny_pth[0]
    url = server.url("/models/Tiny_Medium.pth")
    write_catalog(tmp_path, monkeypatch, [
        dict(name="bad", role="medium", url=url, bytes=len(data), sha256="0" * 64),
        dict(name="good", role="medium", url=url, bytes=len(data), sha256=hashlib.sha256(data).hexdigest()),
    ])
    assert main(["models", "fetch", "--all"]) == 1
    out, err = capsys.readouterr()
    assert "fetched good" in out
    assert err.count("archivist: error: ") == 1 and "bad: checksum mismatch" in err
    assert [e.name for e in Library().list() if not e.builtin] == ["good"]


def test_cli_dropped_connection_then_resume(catalog, server, capsys):
    server.drop_after = 1000
    assert main(["models", "fetch", "tiny"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("archivist: error: tiny: connection dropped after 1000 of")
    assert err[0].endswith("run the same command again to resume")
    assert main(["models", "fetch", "tiny"]) == 0
    assert "resumed at byte 1000" in capsys.readouterr().out


def test_cli_fetch_json(catalog, server, capsys):
    server.drop_after = 500
    assert main(["models", "fetch", "tiny", "--json"]) == 1
    out, err = capsys.readouterr()
    (row,) = json.loads(out)
    assert row["status"] == "failed" and "connection dropped" in row["error"]
    assert err.count("archivist: error:") == 1
    assert main(["models", "fetch", "tiny", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["status"] == "fetched" and row["resumed_from"] == 500 and row["verified"]
    assert row["model"]["name"] == "tiny" and row["model"]["role"] == "medium"


def test_cli_errors(catalog, capsys):
    assert main(["models", "fetch", "nosuch"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["archivist: error: no model named 'nosuch' in the catalog; known are: tiny"]
    assert main(["models", "fetch"]) == 2
    assert "give a catalog NAME, --all or --list" in capsys.readouterr().err
    assert main(["models", "fetch", "tiny", "--all"]) == 2
    capsys.readouterr()
    assert main(["models", "fetch", "tiny"]) == 0
    capsys.readouterr()
    assert main(["models", "fetch", "tiny"]) == 1
    assert "use --force" in capsys.readouterr().err
    assert main(["models", "fetch", "tiny", "--force"]) == 0
