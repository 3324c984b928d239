"""deploy/image/archive.py: one tar that is an OCI archive and a docker-archive."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import tarfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from support import REPO


def load_archive_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("archive", REPO / "deploy/image/archive.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


archive = load_archive_module()


def put_blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def make_layout(root: Path) -> dict[str, Any]:
    """A one-layer image layout shaped like umoci's, with an unrelated second image."""
    layout = root / "oci"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    layer_tar = io.BytesIO()
    with tarfile.open(fileobj=layer_tar, mode="w") as tar:
        info = tarfile.TarInfo("etc/hello")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    layer = put_blob(layout, layer_tar.getvalue())
    config = put_blob(layout, json.dumps({"config": {"User": "10001:10001"}}).encode())
    manifest = {"schemaVersion": 2, "config": config, "layers": [layer]}
    manifest_blob = put_blob(layout, json.dumps(manifest).encode())
    other = put_blob(layout, b'{"schemaVersion": 2, "config": {}, "layers": []}')
    entries = [
        {**manifest_blob, "mediaType": archive.OCI_MANIFEST, "annotations": {
            "org.opencontainers.image.ref.name": "0.1.0"}},
        {**other, "mediaType": archive.OCI_MANIFEST, "annotations": {
            "org.opencontainers.image.ref.name": "old"}},
    ]  # fmt: skip
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
    return {"layout": layout, "manifest": manifest_blob, "config": config, "layer": layer}


def members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def test_both_views_name_the_same_blobs(tmp_path: Path) -> None:
    image = make_layout(tmp_path)
    output = tmp_path / "image.tar"
    archive.write_archive(image["layout"], "0.1.0", "egress-resolver:0.1.0", output)
    files = members(output)

    index = json.loads(files["index.json"])
    (entry,) = index["manifests"]  # only the named image
    assert entry["digest"] == image["manifest"]["digest"]
    assert entry["annotations"] == {
        "org.opencontainers.image.ref.name": "0.1.0",
        "io.containerd.image.name": "egress-resolver:0.1.0",
    }
    (docker,) = json.loads(files["manifest.json"])
    config_path = "blobs/sha256/" + image["config"]["digest"].removeprefix("sha256:")
    layer_path = "blobs/sha256/" + image["layer"]["digest"].removeprefix("sha256:")
    assert docker == {
        "Config": config_path,
        "RepoTags": ["egress-resolver:0.1.0"],
        "Layers": [layer_path],
    }
    blobs = {name for name in files if name.startswith("blobs/")}
    manifest_path = "blobs/sha256/" + image["manifest"]["digest"].removeprefix("sha256:")
    assert blobs == {config_path, layer_path, manifest_path}  # the other image's blob is left out
    for name in blobs:
        assert hashlib.sha256(files[name]).hexdigest() == name.rpartition("/")[2]
    assert files["oci-layout"] == (image["layout"] / "oci-layout").read_bytes()


def test_same_layout_gives_the_same_bytes(tmp_path: Path) -> None:
    image = make_layout(tmp_path)
    first, second = tmp_path / "first.tar", tmp_path / "second.tar"
    archive.write_archive(image["layout"], "0.1.0", "egress-resolver:0.1.0", first)
    archive.write_archive(image["layout"], "0.1.0", "egress-resolver:0.1.0", second)
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as tar:
        assert {(m.uid, m.gid, m.mtime) for m in tar.getmembers()} == {(0, 0, 0)}


def test_unknown_image_name_is_refused(tmp_path: Path) -> None:
    image = make_layout(tmp_path)
    with pytest.raises(SystemExit, match=r"no image named '9\.9\.9'"):
        archive.write_archive(image["layout"], "9.9.9", "x:9.9.9", tmp_path / "out.tar")
    assert not (tmp_path / "out.tar").exists()
