"""kumo.fs and kumo.glob/read_dir/uncached_glob: kumod's shapes, errors, glob rules and cache."""

import json
import os
import re
from pathlib import Path

import pytest

from egress_resolver.kumo_api import fs_glob
from egress_resolver.kumo_api.fs_glob import GlobCache
from egress_resolver.runtime.lua_host import PolicyHost
from support import SHOW_JSON, FakeClock, validate_config_output


def run(tmp_path: Path, body: str) -> list[str]:
    """What a validate_config handler running `body` printed."""
    return validate_config_output(tmp_path, body, SHOW_JSON)


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """A fresh process glob cache on a fake clock."""
    fake = FakeClock()
    monkeypatch.setattr(fs_glob, "GLOB_CACHE", GlobCache(fake))
    return fake


# --- kumo.fs.open and the file object ---------------------------------------------------


def test_writes_are_buffered_until_flush_seek_or_close(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    out = run(
        tmp_path,
        f"""
        local writer = kumo.fs.open([[{target}]], 'w+')
        local reader = kumo.fs.open([[{target}]])
        writer:write 'hello'
        print(reader:read() == '')
        writer:write(' world')
        writer:flush()
        print(reader:read())
        print(writer:seek 'set', writer:seek('end'), writer:seek())
        writer:seek 'set'
        writer:write(42) -- numbers are written as Lua's tostring spells them
        writer:flush()
        reader:seek('set', 0)
        print(reader:read(4), reader:seek(), reader:seek(2), reader:read(100))
        writer:write 'ab'
        writer:close()
        writer:close() -- closing twice does nothing
        reader:seek 'set'
        print(reader:read())
        """,
    )
    assert out == [
        "true",
        "hello world",
        "0\t11\t11",
        "42ll\t4\t6\tworld",
        "42abo world",
    ]
    assert target.read_bytes() == b"42abo world"


def test_a_full_buffer_is_written_out(tmp_path: Path) -> None:
    target = tmp_path / "big"
    out = run(
        tmp_path,
        f"""
        local f = kumo.fs.open([[{target}]], 'w')
        local reader = kumo.fs.open([[{target}]])
        f:write(string.rep('x', 5000))
        print(#reader:read())
        f:write(string.rep('y', 5000)) -- past 8 KiB: what was buffered goes out first
        print(#reader:read())
        f:write(string.rep('z', 9000)) -- the buffer, then this (8 KiB or more) at once
        print(#reader:read())
        f:close()
        print(#reader:read())
        """,
    )
    assert out == ["0", "5000", "14000", "0"]
    assert target.read_bytes() == b"x" * 5000 + b"y" * 5000 + b"z" * 9000


def test_binary_data_goes_both_ways(tmp_path: Path) -> None:
    target = tmp_path / "bin"
    payload = bytes(range(256)) * 40 + b"\xff\x00\xe9"
    target.write_bytes(payload)
    out = run(
        tmp_path,
        f"""
        local f = kumo.fs.open([[{target}]], 'r+b')
        local data = f:read()
        print(#data, data:byte(1), data:byte(256), data:byte(-1))
        f:seek 'set'
        f:write(data:reverse())
        f:close()
        """,
    )
    assert out == [f"{len(payload)}\t0\t255\t233"]
    assert target.read_bytes() == payload[::-1]


def test_modes_create_truncate_and_append_as_kumod(tmp_path: Path) -> None:
    target = tmp_path / "m.txt"
    target.write_bytes(b"0123456789")
    run(
        tmp_path,
        f"""
        local w = kumo.fs.open([[{target}]], 'w') -- kumod's 'w' does not truncate
        w:write 'ab'
        w:close()
        local a = kumo.fs.open([[{target}]], 'a')
        a:seek 'set'
        a:write 'END'
        a:close()
        kumo.fs.open([[{tmp_path / "new-wb"}]], 'wb'):close()
        kumo.fs.open([[{tmp_path / "new-rplus"}]], 'r+'):close()
        kumo.fs.open([[{tmp_path / "new-aplusb"}]], 'a+b'):close()
        kumo.fs.open([[{tmp_path / "trunc"}]], 'w+'):close()
        """,
    )
    assert target.read_bytes() == b"ab23456789END"
    assert all((tmp_path / n).exists() for n in ("new-wb", "new-rplus", "new-aplusb", "trunc"))


def test_open_errors_are_kumods(tmp_path: Path) -> None:
    out = run(
        tmp_path,
        f"""
        print(pcall(kumo.fs.open, [[{tmp_path}/missing/x]]))
        print(pcall(kumo.fs.open, [[{tmp_path}/x]], 'rw'))
        print(pcall(kumo.fs.open, nil))
        local ro = kumo.fs.open([[{tmp_path}/policy.lua]])
        print(pcall(ro.write, ro, {{}}))
        print(pcall(ro.read, ro, -1))
        print(pcall(ro.read, nil))
        """,
    )
    assert out == [
        f"false\tfailed to open {tmp_path}/missing/x with mode r: "
        "No such file or directory (os error 2)",
        "false\tunsupported file mode `rw`",
        "false\tkumo.fs.open: expected a string filename, got nil",
        "false\tfile:write: expected a string, got table",
        "false\tfile:read: the size must be an integer >= 0, got -1",
        "false\tfile:read: expected a file object, call it as file:read(...)",
    ]


def test_seek_arguments_and_closed_files(tmp_path: Path) -> None:
    target = tmp_path / "s"
    target.write_bytes(b"abcdef")
    out = run(
        tmp_path,
        f"""
        local f = kumo.fs.open([[{target}]])
        print(f:seek(3, 'set'), f:seek(-1), f:seek('end', -2))
        for _, args in ipairs {{ {{'bogus'}}, {{'set', 'cur'}}, {{1, 2}}, {{1.5}}, {{true}} }} do
          print(pcall(f.seek, f, table.unpack(args)))
        end
        print(pcall(f.seek, f, 'set', -1))
        print(pcall(f.seek, f, 'cur', -100))
        f:close()
        print(pcall(f.read, f))
        print(pcall(f.write, f, 'x'))
        print(pcall(f.flush, f))
        print(pcall(f.seek, f))
        print(tostring(f):match '^AsyncFile: ' ~= nil)
        """,
    )
    assert out == [
        "3\t2\t4",
        "false\tinvalid whence/offset parameters to seek",
        "false\twhence already set",
        "false\toffset already set",
        "false\tinvalid whence/offset parameters to seek",
        "false\tinvalid whence/offset parameters to seek",
        "false\tstart-relative offset -1 is out of range",
        "false\tInvalid argument (os error 22)",
        "false\tattempt to flush a closed file handle",
        "false\tattempt to flush a closed file handle",
        "false\tattempt to flush a closed file handle",
        "false\tattempt to seek a closed file handle",
        "true",
    ]


def test_relative_paths_are_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy_dir, work = tmp_path / "policy", tmp_path / "work"
    policy_dir.mkdir()
    work.mkdir()
    (work / "data.txt").write_text("from the working directory")
    monkeypatch.chdir(work)
    out = run(policy_dir, "print(kumo.fs.open('data.txt'):read())")
    assert out == ["from the working directory"]


# --- metadata ----------------------------------------------------------------------------


def test_metadata_fields(tmp_path: Path) -> None:
    target = tmp_path / "meta"
    target.write_bytes(b"hello world")
    os.utime(target, ns=(1_700_000_000_500_000_000, 1_600_000_000_000_000_000))
    os.symlink(target, tmp_path / "link")
    info = target.stat()
    out = run(
        tmp_path,
        f"""
        local m = kumo.fs.metadata_for_path [[{target}]]
        show {{ m.path, m.is_file, m.is_dir, m.is_symlink, m.len, m.size, m.readonly }}
        show {{ m.dev, m.ino, m.mode, m.nlink, m.uid, m.gid, m.rdev, m.blksize, m.blocks }}
        show {{ m.mtime.unix_timestamp, m.mtime.rfc3339, m.mtime.rfc2822, m.atime.rfc3339 }}
        show {{ m.mtime.year, m.mtime.month, m.mtime.day, m.mtime.hour, m.mtime.minute }}
        local l = kumo.fs.metadata_for_path [[{tmp_path}/link]]
        local s = kumo.fs.symlink_metadata_for_path [[{tmp_path}/link]]
        show {{ l.is_file, l.is_symlink, s.is_file, s.is_symlink }}
        local d = kumo.fs.metadata_for_path [[{tmp_path}]]
        show {{ d.is_dir, d.is_file }}
        print(pcall(kumo.fs.metadata_for_path, 'this/path/does/not/exist'))
        print(pcall(kumo.fs.symlink_metadata_for_path, 'this/path/does/not/exist'))
        """,
    )
    assert json.loads(out[0]) == [str(target), True, False, False, 11, 11, False]
    assert json.loads(out[1]) == [
        info.st_dev,
        info.st_ino,
        info.st_mode,
        1,
        info.st_uid,
        info.st_gid,
        0,
        info.st_blksize,
        info.st_blocks,
    ]
    assert json.loads(out[2]) == [
        1_600_000_000,
        "2020-09-13T12:26:40+00:00",
        "Sun, 13 Sep 2020 12:26:40 +0000",
        "2023-11-14T22:13:20.500+00:00",
    ]
    assert json.loads(out[3]) == [2020, 9, 13, 12, 26]
    assert json.loads(out[4]) == [True, False, False, True]
    assert json.loads(out[5]) == [True, False]
    assert out[6:] == ["false\tNo such file or directory (os error 2)"] * 2


# --- read_dir ----------------------------------------------------------------------------


def test_read_dir_joins_the_path_with_each_name(tmp_path: Path) -> None:
    touch(tmp_path, "d/a", "d/.hidden", "d/sub/x")
    out = run(
        tmp_path,
        f"""
        local a = kumo.fs.read_dir [[{tmp_path}/d]]
        table.sort(a)
        show(a)
        show(kumo.read_dir [[{tmp_path}/d/sub/]])
        print(pcall(kumo.read_dir, [[{tmp_path}/nope]]))
        print(pcall(kumo.fs.read_dir, [[{tmp_path}/d/a]]))
        print(pcall(kumo.read_dir))
        """,
    )
    assert json.loads(out[0]) == [f"{tmp_path}/d/{n}" for n in (".hidden", "a", "sub")]
    assert json.loads(out[1]) == [f"{tmp_path}/d/sub/x"]
    assert out[2] == "false\tNo such file or directory (os error 2)"
    assert out[3] == "false\tNot a directory (os error 20)"
    assert out[4] == "false\tread_dir: expected a string path, got nil"


def test_a_name_that_is_not_utf8_is_an_error(tmp_path: Path, clock: FakeClock) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d").joinpath(os.fsdecode(b"\xa3.rs")).write_bytes(b"")
    out = run(
        tmp_path,
        f"""
        print(pcall(kumo.read_dir, [[{tmp_path}/d]]))
        print(pcall(kumo.uncached_glob, '*.rs', [[{tmp_path}/d]]))
        print(pcall(kumo.glob, '*.rs', [[{tmp_path}/d]]))
        """,
    )
    assert out == [
        f"false\tpath entry {tmp_path}/d/\ufffd.rs is not representable as utf8",
        "false\tpath entry \ufffd.rs is not representable as utf8",
        f'false\tglob(*.rs, Some("{tmp_path}/d")): '
        "path entry \ufffd.rs is not representable as utf8",
    ]


# --- glob ------------------------------------------------------------------------------

GLOB_TREE = (
    "foo/src/foo.rs",
    "bar/src/bar.rs",
    "bar/src/.bar.rs",
    "woot/woot.rs",
    "woot/.woot.rs",
    "foo.o",
    "foo.a",
    "a-b",
    "a/b",
    "{x}",
)


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("*/src/*.rs", ["bar/src/bar.rs", "foo/src/foo.rs"]),
        ("*/src/.*.rs", ["bar/src/.bar.rs"]),
        ("*", ["a", "a-b", "bar", "foo", "foo.a", "foo.o", "woot", "{x}"]),
        ("**/*.rs", ["bar/src/bar.rs", "foo/src/foo.rs", "woot/woot.rs"]),
        ("**/src", ["bar/src", "foo/src"]),
        ("woot/**", ["woot/.woot.rs", "woot/woot.rs"]),
        ("foo.[oa]", ["foo.a", "foo.o"]),
        ("foo.[[:alpha:]]", ["foo.a", "foo.o"]),
        ("foo.[!o]", ["foo.a"]),
        ("foo.[![:alnum:]]", []),
        ("{foo,bar}/src", ["bar/src", "foo/src"]),
        ("?oo.*", ["foo.a", "foo.o"]),
        ("a*", ["a", "a-b"]),
        ("a*/*", ["a/b"]),
        ("\\{x\\}", ["{x}"]),
        ("./foo/src/foo.rs", ["foo/src/foo.rs"]),
        ("foo//src/./foo.rs", ["foo/src/foo.rs"]),
        ("missing/*.rs", []),
        ("missing", []),
        ("", []),
    ],
)
def test_glob_rules_are_kumods(tmp_path: Path, pattern: str, expected: list[str]) -> None:
    root = tmp_path / "tree"
    touch(root, *GLOB_TREE)
    assert fs_glob.glob(pattern, str(root)) == expected


def test_glob_sorts_by_path_components(tmp_path: Path) -> None:
    touch(tmp_path, "a/b", "a-b/b")
    assert fs_glob.glob("*/b", str(tmp_path)) == ["a/b", "a-b/b"]  # as Rust sorts paths
    assert sorted(["a/b", "a-b/b"]) == ["a-b/b", "a/b"]  # a string sort would differ


def test_glob_absolute_patterns_and_parent_dirs(tmp_path: Path) -> None:
    touch(tmp_path, "woot/woot.rs", "foo/src/foo.rs")
    assert fs_glob.glob(f"{tmp_path}/*/*.rs") == [f"{tmp_path}/woot/woot.rs"]
    assert fs_glob.glob(f"{tmp_path}/**/*.rs") == [
        f"{tmp_path}/foo/src/foo.rs",
        f"{tmp_path}/woot/woot.rs",
    ]
    assert fs_glob.glob("../*/*.rs", str(tmp_path / "woot")) == ["../woot/woot.rs"]
    assert fs_glob.glob(f"{tmp_path}/woot/woot.rs") == [f"{tmp_path}/woot/woot.rs"]


def test_recursive_matching_is_kumods_and_not_exponential(tmp_path: Path) -> None:
    long = "a" * 200
    touch(tmp_path, f"{long}.txt", f"d/{long}.rs", "cab", ".hid/b.rs", "d/.e/b.rs")
    assert fs_glob.glob("**/*.rs", str(tmp_path)) == [f"d/{long}.rs"]
    # filenamegen's `**` may end inside a name: `**/b*` matches `cab` (a kumod quirk, kept)
    assert fs_glob.glob("**/b*", str(tmp_path)) == ["cab"]


def test_glob_follows_links_without_looping(tmp_path: Path) -> None:
    touch(tmp_path, "d/x.rs")
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    os.symlink(tmp_path / "d", tmp_path / "alias")
    assert fs_glob.glob("**/*.rs", str(tmp_path)) == ["alias/x.rs", "d/x.rs"]


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("{{", "cannot start an alternative inside an alternative"),
        ("{", "missing closing alternative"),
        ("[ab", "missing closing class"),
        ("[[:nope:]]", "unknown POSIX class [:nope:]"),
    ],
)
def test_bad_patterns(pattern: str, message: str) -> None:
    with pytest.raises(fs_glob.GlobError, match=re.escape(message)):
        fs_glob.compile_glob(pattern)


def test_glob_from_lua_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    policy_dir = tmp_path / "policy"
    touch(tmp_path, "work/conf/a.toml", "work/conf/b.toml", "policy/conf/elsewhere.toml")
    monkeypatch.chdir(tmp_path / "work")
    out = run(
        policy_dir,
        f"""
        show(kumo.glob 'conf/*.toml')
        show(kumo.fs.glob('*.toml', 'conf'))
        show(kumo.uncached_glob('*.toml', [[{tmp_path}/policy/conf]]))
        show(kumo.fs.uncached_glob 'nothing/*')
        print(pcall(kumo.uncached_glob, '{{'))
        print(pcall(kumo.glob, '{{', 'conf'))
        print(pcall(kumo.glob, 1))
        print(pcall(kumo.glob, '*', nil, -1))
        """,
    )
    assert out == [
        '["conf/a.toml","conf/b.toml"]',
        '["a.toml","b.toml"]',
        '["elsewhere.toml"]',
        "{}",
        "false\tmissing closing alternative",
        'false\tglob({, Some("conf")): missing closing alternative',
        "false\tglob: expected a string pattern, got number",
        "false\tglob: ttl_seconds must be a number of seconds >= 0, got -1",
    ]


# --- kumo.glob's cache -------------------------------------------------------------------


def test_glob_caches_for_its_ttl_and_uncached_glob_does_not(
    tmp_path: Path, clock: FakeClock
) -> None:
    root = tmp_path / "c"
    touch(root, "one.conf")
    policy = tmp_path / "policy.lua"
    policy.write_text(
        "kumo.on('validate_config', function()\n"
        f"  print(#kumo.glob('*.conf', [[{root}]]), #kumo.fs.glob('*.conf', [[{root}]], 5),\n"
        f"        #kumo.uncached_glob('*.conf', [[{root}]]), #kumo.glob('*', [[{root}]], 5))\n"
        "end)\n"
    )
    host = PolicyHost(policy)

    def counts() -> str:
        validation = host.validate_config()
        assert validation.error is None, validation.error
        return validation.output[0]

    assert counts() == "1\t1\t1\t1"
    touch(root, "two.conf")
    clock.advance(4)
    assert counts() == "1\t1\t2\t1"  # kumo.glob and kumo.fs.glob share one cache
    clock.advance(2)  # past the 5 s of '*', within the 60 s of '*.conf'
    assert counts() == "1\t1\t2\t2"
    clock.advance(55)
    assert counts() == "2\t2\t2\t2"
    # a reload (a new runtime) finds the process's cache warm, as in kumod
    touch(root, "three.conf")
    assert PolicyHost(policy).validate_config().output == ["2\t2\t3\t2"]


def test_glob_cache_keeps_errors_and_its_32_most_recent_entries(tmp_path: Path) -> None:
    clock = FakeClock()
    cache = GlobCache(clock)
    odd = tmp_path / "odd"
    odd.mkdir()
    odd.joinpath(os.fsdecode(b"\xa3")).write_bytes(b"")
    with pytest.raises(fs_glob.GlobError, match=r"^glob\(\*, Some\(\".*odd\"\)\): path entry"):
        cache.glob("*", str(odd), 60)
    odd.joinpath(os.fsdecode(b"\xa3")).unlink()
    with pytest.raises(fs_glob.GlobError, match="not representable as utf8"):
        cache.glob("*", str(odd), 60)  # the error is cached too
    with pytest.raises(fs_glob.GlobError, match=r"^glob\(\{, None\): missing closing"):
        cache.glob("{", None, 60)
    (tmp_path / "late").write_bytes(b"")
    for i in range(31):
        cache.glob(f"x{i}", str(tmp_path), 60)  # 33 entries so far: the first two are gone
    assert cache.glob("*", str(odd), 60) == []
    assert cache.glob("late", str(tmp_path), 60) == ["late"]  # evicts x0
    (tmp_path / "late").unlink()
    assert cache.glob("late", str(tmp_path), 60) == ["late"]  # cached
    (tmp_path / "x0").write_bytes(b"")
    (tmp_path / "x2").write_bytes(b"")
    assert cache.glob("x2", str(tmp_path), 60) == []  # still cached
    assert cache.glob("x0", str(tmp_path), 60) == ["x0"]  # had been evicted
    clock.advance(59)
    assert cache.glob("late", str(tmp_path), 60) == ["late"]
    clock.advance(2)
    assert cache.glob("late", str(tmp_path), 60) == []
