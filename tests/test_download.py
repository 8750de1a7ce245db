"""`download` against a local HTTP server on 127.0.0.1: success, md5 mismatch, unreachable."""
import functools
import http.server
import os
import socket
import threading
import time

import pytest

from experiment.errors import UserError
from experiment.sources.download import ARCHIVE_NAME, MD5, download, md5sum
from experiment.sources.official import load_official, write_official


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_download_verifies_and_caches(tiny, tmp_path, server):
    root, base = server
    archive = write_official(tiny, str(root / ARCHIVE_NAME))
    cache = str(tmp_path / "dl")
    path = download(cache, url=f"{base}/{ARCHIVE_NAME}", md5=md5sum(archive))
    assert path == os.path.join(cache, ARCHIVE_NAME)
    assert (load_official(path).train_y == tiny.train_y).all()
    os.remove(archive)  # second call uses the verified cached copy, no network
    assert download(cache, url=f"{base}/{ARCHIVE_NAME}", md5=md5sum(path)) == path


def test_md5_mismatch_is_refused_and_not_kept(tiny, tmp_path, server):
    root, base = server
    write_official(tiny, str(root / ARCHIVE_NAME))
    cache = str(tmp_path / "dl")
    with pytest.raises(UserError, match=f"expected {MD5}"):
        download(cache, url=f"{base}/{ARCHIVE_NAME}")  # the official md5 cannot match a tiny archive
    assert os.listdir(cache) == []


def test_http_error_names_offline_options(tmp_path, server):
    _, base = server
    with pytest.raises(UserError, match="--data"):
        download(str(tmp_path / "dl"), url=f"{base}/missing.tar.gz")


def test_silent_server_fails_within_seconds(tmp_path):
    # A socket that accepts connections but never answers: the read must time out.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    t0 = time.perf_counter()
    with pytest.raises(UserError, match="download of .* failed"):
        download(str(tmp_path / "dl"), url=f"http://127.0.0.1:{s.getsockname()[1]}/x.tar.gz", timeout=2)
    assert time.perf_counter() - t0 < 10
    s.close()


def test_unresolvable_host_fails_within_seconds(tmp_path):
    t0 = time.perf_counter()
    with pytest.raises(UserError, match="cannot resolve"):
        download(str(tmp_path / "dl"), url="http://cifar.invalid/cifar-10-python.tar.gz")
    assert time.perf_counter() - t0 < 10
