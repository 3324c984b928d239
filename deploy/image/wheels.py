"""Downloads the wheels the image's own Python needs, its environment markers included.

    python3 deploy/image/wheels.py --root ROOTFS --python /usr/bin/python3.11 \\
        --dest DIR [--find-links DIR]... REQUIREMENT...

`make image` runs it (deploy/image/build.sh, in a customize hook of
mmdebstrap, once ROOTFS holds the image's Python). pip runs on the build
host, where the package index, proxy and certificates are configured, but it
evaluates every dependency's environment markers against the interpreter that
runs pip, whatever `--python-version` says (that option only picks wheel tags
and checks Requires-Python). A host on Python 3.11.7 therefore skips redis's
`async-timeout; python_full_version < "3.11.3"`, which bookworm's 3.11.2
needs. So:

1. The image's interpreter describes itself, run under chroot in ROOTFS: its
   marker environment (what packaging's default_environment() computes) and
   its glibc version.
2. pip downloads the requirements as wheels for that interpreter's tags:
   `--python-version` with its full version, its ABI, manylinux up to its glibc.
3. The Requires-Dist of every downloaded wheel is evaluated against the image's
   marker environment (with the extras asked of it), from the REQUIREMENTs
   down. A dependency that holds there and that no downloaded wheel satisfies
   is added to the requirements, and pip downloads again (one resolution over
   all of them), until none is missing.

No list of dependencies is kept here: they come from the distributions'
metadata, so a dependency added to pyproject.toml is in the next image.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name, parse_wheel_filename
from packaging.version import Version

# Run by the image's interpreter (stdlib only): the fields of PEP 508's marker
# environment, computed as packaging.markers.default_environment() does.
DESCRIBE = """
import json, os, platform, sys
info = sys.implementation.version
version = f"{info.major}.{info.minor}.{info.micro}"
if info.releaselevel != "final":
    version += info.releaselevel[0] + str(info.serial)
markers = {
    "implementation_name": sys.implementation.name,
    "implementation_version": version,
    "os_name": os.name,
    "platform_machine": platform.machine(),
    "platform_release": platform.release(),
    "platform_system": platform.system(),
    "platform_version": platform.version(),
    "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": ".".join(platform.python_version_tuple()[:2]),
    "sys_platform": sys.platform,
}
print(json.dumps({"markers": markers, "libc": os.confstr("CS_GNU_LIBC_VERSION") or ""}))
"""
# The oldest manylinux_2_N tag listed; pip adds manylinux2010 and manylinux1
# (glibc 2.12 and 2.5) to manylinux2014 (2.17) by itself.
OLDEST_GLIBC_MINOR = 17
MAX_ROUNDS = 5


@dataclass(frozen=True)
class Target:
    """The interpreter the wheels are for."""

    markers: dict[str, str]
    libc: str

    @property
    def python_version(self) -> str:
        return self.markers["python_full_version"]

    def pip_options(self) -> list[str]:
        """pip download's options that select wheels this interpreter installs."""
        if self.markers["implementation_name"] != "cpython":
            raise SystemExit(f"not CPython: {self.markers['implementation_name']}")
        name, _, version = self.libc.partition(" ")
        major, _, minor = version.partition(".")
        if name != "glibc" or major != "2" or not minor.isdigit():
            raise SystemExit(f"not a glibc 2 system: {self.libc!r}")
        machine = self.markers["platform_machine"]
        platforms = [f"manylinux2014_{machine}"]
        platforms += [
            f"manylinux_2_{n}_{machine}" for n in range(OLDEST_GLIBC_MINOR, int(minor) + 1)
        ]
        nodot = "".join(self.markers["python_version"].split("."))
        options = ["--only-binary=:all:", "--python-version", self.python_version]
        options += ["--implementation", "cp", "--abi", f"cp{nodot}"]
        for platform in platforms:
            options += ["--platform", platform]
        return options


@dataclass(frozen=True)
class Wheel:
    """A downloaded wheel: its distribution, version and Requires-Dist."""

    name: NormalizedName
    version: Version
    requires: tuple[Requirement, ...]


def describe(root: Path, python: str) -> Target:
    """What the interpreter `python` of the root file system `root` is."""
    out = subprocess.run(
        [shutil.which("chroot") or "/usr/sbin/chroot", str(root), python, "-I", "-c", DESCRIBE],
        check=True, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    described: dict[str, Any] = json.loads(out)
    return Target(markers=dict(described["markers"]), libc=str(described["libc"]))


def read_wheel(path: Path) -> Wheel:
    name, version, _, _ = parse_wheel_filename(path.name)
    with zipfile.ZipFile(path) as archive:
        (metadata,) = (
            member
            for member in archive.namelist()
            if member.count("/") == 1 and member.endswith(".dist-info/METADATA")
        )
        headers = HeaderParser().parsestr(archive.read(metadata).decode("utf-8"))
    requires = tuple(Requirement(text) for text in headers.get_all("Requires-Dist") or [])
    return Wheel(name=name, version=version, requires=requires)


def read_wheels(directory: Path) -> dict[NormalizedName, list[Wheel]]:
    wheels: dict[NormalizedName, list[Wheel]] = {}
    for path in sorted(directory.glob("*.whl")):
        wheel = read_wheel(path)
        wheels.setdefault(wheel.name, []).append(wheel)
    return wheels


def without_marker(requirement: Requirement) -> str:
    bare = Requirement(str(requirement))
    bare.marker = None
    return str(bare)


def missing(
    roots: Iterable[Requirement],
    wheels: Mapping[NormalizedName, Sequence[Wheel]],
    markers: Mapping[str, str],
) -> list[str]:
    """The requirements (markers dropped) that hold for `markers` and no wheel satisfies.

    Walks from `roots` through the Requires-Dist of the newest wheel that
    satisfies each requirement (what pip installs from a directory), each
    wheel once per extra asked of it.
    """
    found: dict[str, None] = {}
    visited: set[tuple[NormalizedName, Version, str]] = set()
    queue: list[tuple[Requirement, str]] = [(root, "") for root in roots]
    while queue:
        requirement, extra = queue.pop(0)
        if requirement.marker is not None and not requirement.marker.evaluate(
            {**markers, "extra": extra}
        ):
            continue
        candidates = [
            wheel
            for wheel in wheels.get(canonicalize_name(requirement.name), ())
            if requirement.specifier.contains(wheel.version, prereleases=True)
        ]
        if not candidates:
            found[without_marker(requirement)] = None
            continue
        wheel = max(candidates, key=lambda candidate: candidate.version)
        for wanted in ("", *sorted(requirement.extras)):
            if (wheel.name, wheel.version, wanted) not in visited:
                visited.add((wheel.name, wheel.version, wanted))
                queue += [(dependency, wanted) for dependency in wheel.requires]
    return list(found)


def download(
    target: Target, dest: Path, requirements: Sequence[str], find_links: Sequence[str]
) -> None:
    links = [option for link in find_links for option in ("--find-links", link)]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(dest)]
    subprocess.run([*command, *target.pip_options(), *links, *requirements], check=True)


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="the image's root file system")
    parser.add_argument("--python", required=True, help="its interpreter, e.g. /usr/bin/python3.11")
    parser.add_argument("--dest", type=Path, required=True, help="where the wheels go")
    parser.add_argument("--find-links", action="append", default=[], help="passed to pip")
    parser.add_argument("requirements", nargs="+")
    args = parser.parse_args(argv)
    target = describe(args.root, args.python)
    args.dest.mkdir(parents=True, exist_ok=True)
    roots = [Requirement(text) for text in args.requirements]
    added: list[str] = []
    for _ in range(MAX_ROUNDS):
        download(target, args.dest, [*args.requirements, *added], args.find_links)
        wheels = read_wheels(args.dest)
        needed = missing(roots, wheels, target.markers)
        if not needed:
            count = sum(len(versions) for versions in wheels.values())
            print(f"wheels: {count} for Python {target.python_version} ({target.libc})")
            return 0
        new = [requirement for requirement in needed if requirement not in added]
        if not new:
            raise SystemExit(f"wheels: pip downloaded nothing that satisfies {', '.join(needed)}")
        print(f"wheels: Python {target.python_version} also needs {', '.join(new)}")
        added += new
    raise SystemExit(f"wheels: still missing after {MAX_ROUNDS} downloads: {', '.join(needed)}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
