"""Writes an OCI image layout as one tar that is both an OCI archive and a docker-archive.

    python3 deploy/image/archive.py LAYOUT_DIR REF_NAME TAG OUTPUT

LAYOUT_DIR is an OCI image layout (umoci's) whose index names the image
REF_NAME (e.g. ``0.1.0``). OUTPUT gets ``oci-layout``, ``index.json`` and the
image's blobs (what ``podman load`` / ``skopeo`` read as ``oci-archive:``
and Docker 25+ loads), plus ``manifest.json`` naming the same config and
layer blobs with ``RepoTags: [TAG]`` (what ``docker load`` of any version
and ``docker-archive:`` read). This is the layout ``docker save`` itself
writes since Docker 25.

Hand-written (stdlib only) because neither umoci nor skopeo writes both
formats into one file; entries are sorted and their owners and times fixed,
so the same layout always gives the same bytes.
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def blob_path(digest: str) -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"blobs/{algorithm}/{hexdigest}"


def find_manifest(layout: Path, ref_name: str) -> dict[str, Any]:
    """The index entry of the manifest named `ref_name`."""
    index = json.loads((layout / "index.json").read_text())
    for entry in index["manifests"]:
        annotations = entry.get("annotations", {})
        if annotations.get("org.opencontainers.image.ref.name") == ref_name:
            if entry["mediaType"] != OCI_MANIFEST:
                raise SystemExit(f"{ref_name}: not an image manifest: {entry['mediaType']}")
            return dict(entry)
    raise SystemExit(f"{layout}: no image named {ref_name!r} in index.json")


def add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def write_archive(layout: Path, ref_name: str, tag: str, output: Path) -> None:
    entry = find_manifest(layout, ref_name)
    manifest = json.loads((layout / blob_path(entry["digest"])).read_bytes())
    config_digest = manifest["config"]["digest"]
    layers = [layer["digest"] for layer in manifest["layers"]]
    entry["annotations"] = {
        "org.opencontainers.image.ref.name": ref_name,
        # containerd (Docker 25+) names the loaded image after this one.
        "io.containerd.image.name": tag,
    }
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"}
    index["manifests"] = [entry]
    docker_manifest = [
        {
            "Config": blob_path(config_digest),
            "RepoTags": [tag],
            "Layers": [blob_path(digest) for digest in layers],
        }
    ]
    blobs = sorted({entry["digest"], config_digest, *layers})
    tmp = output.with_name(output.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as archive:
        add_bytes(archive, "oci-layout", (layout / "oci-layout").read_bytes())
        add_bytes(archive, "index.json", json.dumps(index, indent=2).encode())
        add_bytes(archive, "manifest.json", json.dumps(docker_manifest, indent=2).encode())
        for directory in sorted({str(Path(blob_path(d)).parent) for d in blobs} | {"blobs"}):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            archive.addfile(info)
        for digest in blobs:
            path = layout / blob_path(digest)
            info = tarfile.TarInfo(blob_path(digest))
            info.size = path.stat().st_size
            info.mode = 0o644
            with path.open("rb") as blob:
                archive.addfile(info, blob)
    tmp.replace(output)


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    layout, ref_name, tag, output = argv
    write_archive(Path(layout), ref_name, tag, Path(output))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
