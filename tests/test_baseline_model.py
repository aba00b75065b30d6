"""The official baseline model: fetched sha256-verified (from a local server here), and the
`baseline_inference` phase that every testing run adds."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from utils import download, stages
from utils.download import BASELINE_MODEL, download_baseline_model
from utils.energy import EnergyMeter
from utils.errors import Task1aError
from utils.files import file_digest
from utils.workspace import Workspace


@pytest.fixture
def serve(reference_dir):
    """A local HTTP server on 127.0.0.1 answering every path with ``body`` (the official file by default)."""
    servers = []

    def start(body: bytes | None = None):
        content = (reference_dir / "model_task1.tflite").read_bytes() if body is None else body
        requests = []

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                requests.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/model_task1.tflite", requests

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_the_manifest_entry_is_the_official_file(reference_dir):
    assert BASELINE_MODEL["sha256"] == stages.OFFICIAL_MODEL_SHA256 == file_digest(reference_dir / "model_task1.tflite")
    assert BASELINE_MODEL["bytes"] == (reference_dir / "model_task1.tflite").stat().st_size
    assert BASELINE_MODEL["url"].startswith("https://") and "dcase2022_task1_baseline" in BASELINE_MODEL["url"]


def test_download_verifies_and_keeps_a_verified_copy(serve, tmp_path):
    url, requests = serve()
    target = tmp_path / "models" / "model_task1.tflite"
    assert download_baseline_model(target, url, progress=False) == target
    assert file_digest(target) == stages.OFFICIAL_MODEL_SHA256
    assert not target.with_name(target.name + ".part").exists()
    assert download_baseline_model(target, url, progress=False) == target  # verified copy kept, not fetched again
    assert len(requests) == 1
    assert stages.baseline_model_problem(target) is None


def test_download_of_another_file_is_deleted_with_one_line(serve, tmp_path, reference_dir):
    wrong = bytearray((reference_dir / "model_task1.tflite").read_bytes())
    wrong[100] ^= 0xFF  # same size, another checksum
    url, _ = serve(bytes(wrong))
    target = tmp_path / "model_task1.tflite"
    with pytest.raises(Task1aError, match="does not match the official file.*rerun"):
        download_baseline_model(target, url, progress=False, retries=0)
    assert not target.exists() and not list(tmp_path.iterdir())
    target.write_bytes(bytes(wrong))  # a wrong file in place is not overwritten silently
    with pytest.raises(Task1aError, match="is not the official baseline model.*move it away"):
        download_baseline_model(target, url, progress=False)
    with pytest.raises(Task1aError, match="not an http"):
        download_baseline_model(tmp_path / "x.tflite", "ftp://example.org/model.tflite", progress=False)


def test_a_missing_or_wrong_baseline_model_is_not_measured_with_the_fix(tmp_path):
    params = {"recognizer": {"baseline_model": "models/model_task1.tflite"}, "data_processing": {"normalization": "max_abs_int16"}}
    meter = EnergyMeter(enabled=False)
    runner = stages.StageRunner(Workspace(tmp_path / "system"), tmp_path, meter)
    assert stages.run_baseline_inference(runner, params, None, None, tmp_path / "recognizer") is None
    record = meter.results()["baseline_inference"]
    assert record["measured"] is False
    assert f"python task1a.py --download_baseline_model {tmp_path / 'models' / 'model_task1.tflite'}" in record["reason"]
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "model_task1.tflite").write_bytes(b"not a model")
    assert "is not the official baseline model" in stages.baseline_model_problem(tmp_path / "models" / "model_task1.tflite")


def test_the_downloader_module_keeps_its_dataset_part_untouched():
    # the baseline model is a self-contained addition: the dataset manifest does not list it
    assert all(part.file != BASELINE_MODEL["file"] for release in download.load_manifest().values() for part in release.parts)
