"""client/go used from another module: `go get` with a replace pointing at the checkout."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from scratch_projects import clean_env, clients_sidecar, run
from support import REPO

MODULE = "github.com/egress-resolver/egress-resolver/client/go"
MAIN = """\
// Command scratch-mta resolves one name that exists and one that does not.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/egress-resolver/egress-resolver/client/go/egressclient"
)

func main() {
	target, name, missing := os.Args[1], os.Args[2], os.Args[3]
	client, err := egressclient.New(target)
	if err != nil {
		panic(err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	source, err := client.Get(ctx, name)
	if err != nil {
		panic(err)
	}
	_, err = client.Get(ctx, missing)
	var resolveErr *egressclient.Error
	if !errors.As(err, &resolveErr) {
		panic(fmt.Sprintf("want an *egressclient.Error, got %v", err))
	}
	line, _ := json.Marshal(map[string]any{
		"source_address": source.GetSourceAddress(),
		"ehlo_domain":    source.GetEhloDomain(),
		"failure":        []string{egressclient.CodeName(resolveErr.Code), resolveErr.Reason},
	})
	fmt.Println(string(line))
}
"""


def go_directive() -> str:
    found = re.search(r"^go (\S+)$", (REPO / "client" / "go" / "go.mod").read_text(), re.M)
    assert found is not None
    return found.group(1)


@pytest.mark.timeout(600)
def test_scratch_module_gets_the_client_and_resolves(tmp_path: Path) -> None:
    project = tmp_path / "scratch-mta"
    project.mkdir()
    go_env = clean_env(GOTOOLCHAIN="local")  # the installed Go, never a downloaded one
    (project / "go.mod").write_text(f"module example.com/scratch-mta\n\ngo {go_directive()}\n")
    (project / "main.go").write_text(MAIN)
    run("go", "mod", "edit", f"-replace={MODULE}={REPO / 'client' / 'go'}", cwd=project, env=go_env)
    # The replace covers every version; v0.0.0 names the checkout (no tag, no proxy).
    run("go", "get", f"{MODULE}@v0.0.0", cwd=project, env=go_env)
    run("go", "mod", "tidy", cwd=project, env=go_env)
    assert f"require {MODULE} v0.0.0\n" in (project / "go.mod").read_text()
    run("go", "build", "-o", "scratch-mta", ".", cwd=project, env=go_env)

    with clients_sidecar() as server:
        out = run(project / "scratch-mta", server.target, "full", "missing", cwd=project)
    assert json.loads(out.stdout) == {
        "source_address": "10.0.0.1",
        "ehlo_domain": "mta1.examplecorp.com",
        "failure": ["NOT_FOUND", "SOURCE_NOT_FOUND"],
    }

    # What a user of the module reads: the package doc with its usage snippet.
    doc = run("go", "doc", f"{MODULE}/egressclient", cwd=project, env=go_env).stdout
    assert "Package egressclient is the Go client of egress-resolver" in doc
    assert 'client.Select(ctx, "pool-1")' in doc
    assert "client.Get(ctx, name)" in doc
