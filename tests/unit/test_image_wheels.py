"""deploy/image/wheels.py: the wheels for the image's Python, environment markers included."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement

from support import REPO


def load_wheels_module() -> ModuleType:
    name = "deploy_image_wheels"
    spec = importlib.util.spec_from_file_location(name, REPO / "deploy/image/wheels.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


wheels = load_wheels_module()

# Debian bookworm's python3.11, as wheels.describe() reports it.
BOOKWORM: dict[str, str] = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.2",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_release": "6.1.0",
    "platform_system": "Linux",
    "platform_version": "#1 SMP",
    "python_full_version": "3.11.2",
    "platform_python_implementation": "CPython",
    "python_version": "3.11",
    "sys_platform": "linux",
}
LATER = {**BOOKWORM, "python_full_version": "3.11.7", "implementation_version": "3.11.7"}


def make_wheel(directory: Path, name: str, version: str, *requires: str) -> Path:
    """A wheel whose METADATA names `requires` (nothing else is in it)."""
    path = directory / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    metadata = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    metadata += [f"Requires-Dist: {requirement}" for requirement in requires]
    with zipfile.ZipFile(path, "w") as archive:
        dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
        archive.writestr(f"{dist_info}/METADATA", "\n".join(metadata) + "\n")
        archive.writestr(f"{name.replace('-', '_')}/__init__.py", "")
    return path


def missing(directory: Path, markers: dict[str, str], *roots: str) -> list[str]:
    found: list[str] = wheels.missing(
        [Requirement(root) for root in roots], wheels.read_wheels(directory), markers
    )
    return found


def test_a_dependency_under_a_marker_of_the_image_python_is_missing(tmp_path: Path) -> None:
    make_wheel(tmp_path, "app", "1.0", "redis==8.1.0")
    make_wheel(tmp_path, "redis", "8.1.0", 'async-timeout>=4.0.3; python_full_version < "3.11.3"')
    assert missing(tmp_path, BOOKWORM, "app==1.0") == ["async-timeout>=4.0.3"]
    # The build host's later 3.11 does not need it: what pip alone downloads.
    assert missing(tmp_path, LATER, "app==1.0") == []
    make_wheel(tmp_path, "async-timeout", "5.0.1")
    assert missing(tmp_path, BOOKWORM, "app==1.0") == []


def test_extras_asked_of_a_wheel_bring_their_dependencies(tmp_path: Path) -> None:
    make_wheel(tmp_path, "app", "1.0", "lib[speed]>=2")
    make_wheel(tmp_path, "lib", "2.0", 'fast; extra == "speed"', 'docs; extra == "docs"')
    assert missing(tmp_path, BOOKWORM, "app") == ["fast"]
    assert missing(tmp_path, BOOKWORM, "lib") == []


def test_the_newest_satisfying_wheel_is_followed(tmp_path: Path) -> None:
    make_wheel(tmp_path, "app", "1.0", "lib>=1")
    make_wheel(tmp_path, "lib", "1.0")
    make_wheel(tmp_path, "lib", "2.0", 'tomli; python_version < "3.12"')
    make_wheel(tmp_path, "other", "1.0", "lib<2")
    assert missing(tmp_path, BOOKWORM, "app") == ["tomli"]
    assert missing(tmp_path, BOOKWORM, "other") == []
    # A version outside the specifier is no match.
    assert missing(tmp_path, BOOKWORM, "lib>=3") == ["lib>=3"]


def test_pip_is_told_the_image_python_and_glibc() -> None:
    target = wheels.Target(markers=BOOKWORM, libc="glibc 2.36")
    options: list[str] = target.pip_options()
    assert options[options.index("--python-version") + 1] == "3.11.2"
    assert options[options.index("--abi") + 1] == "cp311"
    platforms = [options[i + 1] for i, option in enumerate(options) if option == "--platform"]
    assert platforms[0] == "manylinux2014_x86_64"
    assert "manylinux_2_36_x86_64" in platforms
    assert "manylinux_2_37_x86_64" not in platforms
    with pytest.raises(SystemExit, match="glibc"):
        wheels.Target(markers=BOOKWORM, libc="").pip_options()


def test_pip_downloads_again_with_what_the_image_python_also_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """main(): a second download names the missing dependency next to the roots."""
    calls: list[list[str]] = []

    def download(target: Any, dest: Path, requirements: list[str], find_links: list[str]) -> None:
        calls.append(list(requirements))
        make_wheel(dest, "app", "1.0", 'backport; python_full_version < "3.11.3"')
        if "backport" in requirements:
            make_wheel(dest, "backport", "1.0")

    target = wheels.Target(markers=BOOKWORM, libc="glibc 2.36")
    monkeypatch.setattr(wheels, "describe", lambda root, python: target)
    monkeypatch.setattr(wheels, "download", download)
    argv = ["--root", str(tmp_path), "--python", "/usr/bin/python3.11"]
    assert wheels.main([*argv, "--dest", str(tmp_path / "wheels"), "app==1.0"]) == 0
    assert calls == [["app==1.0"], ["app==1.0", "backport"]]
    out = capsys.readouterr().out
    assert "Python 3.11.2 also needs backport" in out
    assert "wheels: 2 for Python 3.11.2 (glibc 2.36)" in out
