"""The npm tarball in dist/, installed into a scratch Node project that type-checks against it."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

from scratch_projects import VERSION, built, clients_sidecar, run
from support import REPO

PACKAGE = "@egress-resolver/client"
TSCONFIG = {
    "compilerOptions": {
        "target": "ES2022",
        "lib": ["ES2022"],
        "module": "NodeNext",
        "moduleResolution": "NodeNext",
        "types": ["node"],
        "strict": True,
        "noUncheckedIndexedAccess": True,
        "skipLibCheck": True,
        "outDir": "out",
    },
    # One tsc run for both: main.ts compiles, wrong.ts must be refused.
    "files": ["main.ts", "wrong.ts"],
}
MAIN = """\
import { createResolver, ResolverError, type EgressSource } from "@egress-resolver/client";

const [target, name, missing] = process.argv.slice(2);
if (target === undefined || name === undefined || missing === undefined) {
  throw new Error("usage: main TARGET NAME MISSING");
}
const resolver = createResolver(target, { timeoutMs: 30000 });
try {
  const source: EgressSource = await resolver.get(name);
  let failure: [string, string | undefined] | null = null;
  try {
    await resolver.get(missing);
  } catch (error) {
    if (!(error instanceof ResolverError)) {
      throw error;
    }
    failure = [error.code, error.reason];
  }
  const sourceAddress: string | undefined = source.sourceAddress;
  console.log(JSON.stringify({ sourceAddress, ehloDomain: source.ehloDomain, failure }));
} finally {
  resolver.close();
}
"""
# Must not compile: proves the package's types are seen (an `any` would pass).
WRONG = """\
import { createResolver } from "@egress-resolver/client";

const port: number = (await createResolver("127.0.0.1:1").get("ip-1")).sourceAddress;
console.log(port);
"""


def test_tarball_holds_only_what_runs() -> None:
    with tarfile.open(built(f"egress-resolver-client-{VERSION}.tgz")) as archive:
        names = set(archive.getnames())
    assert {
        "package/package.json",
        "package/dist/src/client.js",
        "package/dist/src/client.d.ts",
    } <= names
    plugin = {  # the Haraka plugin, CommonJS, which imports dist/src/haraka.js
        "package/haraka/egress/package.json",
        "package/haraka/egress/index.js",
        "package/haraka/egress/config/egress.ini",
    }
    assert plugin <= names
    assert "package/dist/src/haraka.js" in names
    shipped = names - {"package/package.json", "package/README.md"} - plugin
    assert all(n.startswith("package/dist/src/") for n in shipped), sorted(shipped)
    assert all(n.endswith((".js", ".d.ts")) for n in shipped), sorted(shipped)
    assert not any("example" in n for n in shipped), sorted(shipped)


def test_scratch_project_installs_the_tarball_and_resolves(tmp_path: Path) -> None:
    tarball = built(f"egress-resolver-client-{VERSION}.tgz")
    ours = json.loads((REPO / "client" / "typescript" / "package.json").read_text())
    project = tmp_path / "mta"
    project.mkdir()
    manifest = {"name": "scratch-mta", "version": "0.0.0", "private": True, "type": "module"}
    (project / "package.json").write_text(json.dumps(manifest))
    # The same typescript and @types/node as the client's own build (npm's cache has them).
    tools = [f"{name}@{ours['devDependencies'][name]}" for name in ("typescript", "@types/node")]
    run(
        "npm", "install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error",
        tarball, *tools, cwd=project,
    )  # fmt: skip
    installed = json.loads((project / "package.json").read_text())["dependencies"]
    assert installed[PACKAGE].startswith("file:")

    (project / "tsconfig.json").write_text(json.dumps(TSCONFIG))
    (project / "main.ts").write_text(MAIN)
    (project / "wrong.ts").write_text(WRONG)
    checked = run(project / "node_modules" / ".bin" / "tsc", "-p", ".", cwd=project, check=False)
    errors = [line for line in checked.stdout.splitlines() if ": error TS" in line]
    assert checked.returncode != 0, checked.stdout
    assert len(errors) == 1, checked.stdout
    assert errors[0].startswith("wrong.ts(3,7): error TS2322: Type 'string | undefined'"), errors
    assert (project / "out" / "main.js").is_file()  # tsc emits despite wrong.ts's error

    with clients_sidecar() as server:
        out = run("node", "out/main.js", server.target, "full", "missing", cwd=project)
    assert json.loads(out.stdout) == {
        "sourceAddress": "10.0.0.1",
        "ehloDomain": "mta1.examplecorp.com",
        "failure": ["NOT_FOUND", "SOURCE_NOT_FOUND"],
    }
