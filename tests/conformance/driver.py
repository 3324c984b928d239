"""The conformance driver: one sidecar, one language's example processes, one scenario.

A scenario (scenarios/*.json) names a policy (policies/*.lua), the example's
options, the real peers it connects to and a list of steps. The harness
starts the peers (scenario_peers.py: an SMTP recorder, SOCKS5 servers,
HAProxy, closed ports), copies the policy into a scratch directory with the
peers' addresses put in for their placeholders (`{smtp}`, `{smtp.port}`, …),
serves it with a real `egress-resolver serve` on a unix socket there (so a
restarted sidecar has the same address), starts the language's example as
`make -s example-<lang> TARGET=unix:… CACHE=1` and talks to it over
stdin/stdout, one JSON line each way. Every language meets the same steps
and the same expected outputs, so none can drift from the others.

`"examples"` is how many example processes share the sidecar (default 1),
or a list of each one's settings (`{"cache": false, "env": {...}, "options":
{...}}`, defaults: the scenario's `cache`, `env` and `options`); a step goes
to `"example": I` (default 0). `cache` is `CACHE=1` (the example's `--cache`,
a code option); `env` adds variables (EGRESS_CLIENT_* ones, say) to the
example's environment, from which every EGRESS_CLIENT_* variable of the
harness's own is removed first, so that a scenario sees only its own;
`options` is the JSON object the example reads from EXAMPLE_OPTIONS and passes
to its client as code options (docs/clients/spec.md, "The example program").

Steps (one key each, plus modifiers; placeholders are replaced first, and
`{target}` is the sidecar's address as the examples are given it):

- `{"send": CMD, "expect": OBJ}`: one command line, one answer line, which
  must match OBJ (see `matches`). With `"exact": true` it must equal OBJ
  (no key more). With `"within": S`, the command is sent again (every 50 ms)
  until the answer matches, for at most S seconds.
- `{"start_fails": {"env": {...}, "options": {...}}, "stderr": [TEXT, ...]}`:
  an example started with these settings must refuse them: exit non-zero
  before reading a command, saying every TEXT on stderr (the variable and
  the value it could not parse, say).
- `{"saw": PEER, "kind": KIND, "expect": [RECORD, ...]}`: what a peer
  recorded since the last such check (scenario_peers.py).
- `{"wait_watching": true}`: until `{"stats": {}}` says watching.
- `{"prime": [NAME, ...]}`: the harness itself resolves these names at the
  sidecar, so that they sit in the sidecar's cache, aging.
- `{"sleep": S}`: let real time pass (ttl scenarios only: expiry is a matter
  of the clock, in another process).
- `{"reload": {"replace": [OLD, NEW]}}`: rewrite the policy (optional), then
  SIGHUP and wait until the sidecar logs the new policy.
- `{"invalidate": {"names": [...], "pool_names": [...], "all": false}}`.
- `{"stop": {}}`, `{"start": {"replace": [OLD, NEW]}}`: SIGTERM the sidecar
  (waiting for its exit), start it again (optionally with a changed policy).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
from conformance.scenario_peers import ScenarioPeers

from kumo.egress.v1 import resolver_service_pb2 as pb
from kumo.egress.v1 import resolver_service_pb2_grpc as pb_grpc

HERE = Path(__file__).parent
REPO = HERE.parent.parent
LANGUAGES = ("python", "go", "typescript", "rust")
LINE_TIMEOUT = 120.0  # generous: the first command may wait for a cold build
POLL = 0.05
CLIENT_VARIABLE_PREFIX = "EGRESS_CLIENT_"
EXAMPLE_OPTIONS = "EXAMPLE_OPTIONS"


def matches(expected: Any, actual: Any, *, exact: bool = False) -> bool:
    """`actual` has everything `expected` says: dicts by subset (recursively;
    `exact`: with the same keys too), lists element by element and of the same
    length, "<number>" / "<string>" any value of that type, other values by
    equality and type."""
    if expected == "<number>":
        return isinstance(actual, int | float) and not isinstance(actual, bool)
    if expected == "<string>":
        return isinstance(actual, str)
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and (not exact or expected.keys() == actual.keys())
            and all(
                key in actual and matches(value, actual[key], exact=exact)
                for key, value in expected.items()
            )
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a, exact=exact) for e, a in zip(expected, actual, strict=True))
        )
    return bool(expected == actual) and type(expected) is type(actual)


class Sidecar:
    """`egress-resolver serve` on a unix socket in a scratch directory."""

    def __init__(self, policy: Path, workdir: Path, args: list[str]) -> None:
        self.policy = workdir / "policy.lua"
        shutil.copy(policy, self.policy)
        self.socket = workdir / "sidecar.sock"
        self.target = f"unix:{self.socket}"
        self.args = args
        self.proc: subprocess.Popen[str] | None = None
        self._events: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def rewrite(self, replace: list[str] | None) -> None:
        """Change the policy file: replace replace[0] with replace[1]."""
        if replace:
            text = self.policy.read_text()
            assert replace[0] in text, f"{replace[0]!r} is not in the policy"
            self.policy.write_text(text.replace(replace[0], replace[1]))

    def start(self) -> None:
        """Start serving and wait until the policy is loaded."""
        command = [sys.executable, "-m", "egress_resolver", "serve", "--policy", str(self.policy)]
        command += ["--listen", self.target, "--watch-interval", "0", *self.args]
        self.proc = subprocess.Popen(
            command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
        )
        self._events = queue.Queue()
        threading.Thread(target=self._read, args=(self.proc, self._events), daemon=True).start()
        self.wait_for("policy loaded")

    @staticmethod
    def _read(proc: subprocess.Popen[str], events: queue.Queue[dict[str, Any] | None]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            try:
                events.put(json.loads(line))
            except json.JSONDecodeError:
                events.put({"event": "unparsed", "line": line})
        events.put(None)

    def wait_for(self, event: str) -> dict[str, Any]:
        """The next log record with this event."""
        deadline = time.monotonic() + LINE_TIMEOUT
        while time.monotonic() < deadline:
            record = self._events.get(timeout=max(0.0, deadline - time.monotonic()))
            if record is None:
                raise AssertionError(f"the sidecar exited before logging {event!r}")
            if record.get("event") == event:
                return record
        raise AssertionError(f"the sidecar did not log {event!r} in time")

    def reload(self, replace: list[str] | None) -> None:
        """Rewrite (optionally), SIGHUP, and wait for the new policy."""
        self.rewrite(replace)
        assert self.proc is not None
        self.proc.send_signal(signal.SIGHUP)
        self.wait_for("policy loaded")

    def stop(self) -> None:
        """SIGTERM and wait for the exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(LINE_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
        self.proc = None

    def call(self, method: str, request: Any) -> Any:
        """One unary call from the harness itself."""
        with grpc.insecure_channel(self.target) as channel:
            stub = pb_grpc.EgressResolverServiceStub(channel)
            return getattr(stub, method)(request, timeout=LINE_TIMEOUT)


def example_environment(env: dict[str, str], options: dict[str, Any] | None) -> dict[str, str]:
    """The harness's environment without its EGRESS_CLIENT_* variables and
    EXAMPLE_OPTIONS, plus the scenario's `env` and its `options` as
    EXAMPLE_OPTIONS: what an example sees is what the scenario says."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(CLIENT_VARIABLE_PREFIX) and key != EXAMPLE_OPTIONS
    }
    added = {EXAMPLE_OPTIONS: json.dumps(options)} if options else {}
    return {**inherited, **env, **added}


class Example:
    """A language's example program, driven over its stdin and stdout."""

    def __init__(
        self,
        language: str,
        target: str,
        cache: bool,
        env: dict[str, str],
        options: dict[str, Any] | None = None,
        *,
        capture_stderr: bool = False,
    ) -> None:
        command = ["make", "-s", "--no-print-directory", f"example-{language}", f"TARGET={target}"]
        if cache:
            command.append("CACHE=1")
        self.proc = subprocess.Popen(
            command,
            cwd=REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE if capture_stderr else None,
            text=True,
            env=example_environment(env, options),
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def ask(self, command: Any) -> Any:
        """Send one command, return the parsed answer line."""
        self.send(command)
        return self.receive(command)

    def send(self, command: Any) -> None:
        """Send one command without waiting for its answer (see `receive`)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()

    def receive(self, command: Any) -> Any:
        """The parsed answer line to `command`, sent before."""
        try:
            line = self._lines.get(timeout=LINE_TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no answer to {command} in {LINE_TIMEOUT} s") from None
        if line is None:
            raise AssertionError(f"the example exited (code {self.proc.wait()}) at {command}")
        return json.loads(line)

    def close(self) -> None:
        """End of input: the example must exit 0."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            code = self.proc.wait(LINE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("the example did not exit at the end of its input") from None
        assert code == 0, f"the example exited with {code}"

    def refused(self) -> str:
        """End of input at once: the example must exit non-zero (it refused
        its settings); what it said on stderr."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            code = self.proc.wait(LINE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("the example did not exit at the end of its input") from None
        assert self.proc.stderr is not None
        said = self.proc.stderr.read()
        self.proc.stderr.close()
        assert code != 0, f"the example started (exit 0) with settings it must refuse: {said}"
        return said


def run(language: str, scenario: dict[str, Any]) -> None:
    """Play one scenario against one language; raises AssertionError on a mismatch."""
    workdir = Path(tempfile.mkdtemp(prefix="egc-"))  # short: unix socket paths are limited
    peers = ScenarioPeers(scenario.get("peers", {}))
    sidecar = Sidecar(HERE / scenario["policy"], workdir, scenario.get("server_args", []))
    examples: list[Example] = []
    try:
        peers.start()
        sidecar.policy.write_text(peers.substitute_text(sidecar.policy.read_text()))
        sidecar.start()
        for settings in _example_settings(scenario):
            examples.append(
                Example(
                    language,
                    sidecar.target,
                    settings["cache"],
                    settings["env"],
                    settings["options"],
                )
            )
        for number, step in enumerate(scenario["steps"], 1):
            try:
                _step(_substitute(step, peers, sidecar), sidecar, examples, peers, language)
            except AssertionError as err:
                raise AssertionError(f"step {number} {json.dumps(step)}: {err}") from None
        while examples:
            examples[0].close()
            examples.pop(0)
    finally:
        for example in examples:
            example.proc.kill()
            example.proc.wait()
        sidecar.stop()
        peers.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _example_settings(scenario: dict[str, Any]) -> list[dict[str, Any]]:
    """Each example's `cache`, `env` and `options`, from `"examples"` (a count or a list)."""
    declared = scenario.get("examples", 1)
    listed = [{}] * declared if isinstance(declared, int) else declared
    default = {
        "cache": scenario.get("cache", True),
        "env": scenario.get("env", {}),
        "options": scenario.get("options"),
    }
    return [{**default, **settings} for settings in listed]


def _substitute(step: Any, peers: ScenarioPeers, sidecar: Sidecar) -> Any:
    """The step with the peers' placeholders and `{target}` replaced."""
    step = peers.substitute(step)
    if isinstance(step, str):
        return step.replace("{target}", sidecar.target)
    if isinstance(step, list):
        return [_substitute(value, peers, sidecar) for value in step]
    if isinstance(step, dict):
        return {key: _substitute(value, peers, sidecar) for key, value in step.items()}
    return step


def _step(
    step: dict[str, Any],
    sidecar: Sidecar,
    examples: list[Example],
    peers: ScenarioPeers,
    language: str,
) -> None:
    example = examples[step.get("example", 0)]
    if "send" in step:
        _expect(
            example, step["send"], step["expect"], step.get("within", 0.0), step.get("exact", False)
        )
    elif "start_fails" in step:
        _start_fails(language, sidecar, step["start_fails"], step["stderr"])
    elif "saw" in step:
        seen = peers.new_records(step["saw"], step.get("kind", "helo"))
        if not matches(step["expect"], seen):
            raise AssertionError(f"expected {json.dumps(step['expect'])}, saw {json.dumps(seen)}")
    elif "wait_watching" in step:
        _expect(example, {"stats": {}}, {"watching": True}, LINE_TIMEOUT)
    elif "prime" in step:
        for name in step["prime"]:
            sidecar.call("GetEgressSource", pb.GetEgressSourceRequest(name=name))
    elif "sleep" in step:
        time.sleep(float(step["sleep"]))
    elif "reload" in step:
        sidecar.reload(step["reload"].get("replace"))
    elif "invalidate" in step:
        sidecar.call("Invalidate", pb.InvalidateRequest(**step["invalidate"]))
    elif "stop" in step:
        sidecar.stop()
    elif "start" in step:
        sidecar.rewrite(step["start"].get("replace"))
        sidecar.start()
    else:
        raise AssertionError(f"unknown step {step}")


def _start_fails(
    language: str, sidecar: Sidecar, settings: dict[str, Any], said: list[str]
) -> None:
    example = Example(
        language,
        sidecar.target,
        settings.get("cache", True),
        settings.get("env", {}),
        settings.get("options"),
        capture_stderr=True,
    )
    stderr = example.refused()
    missing = [text for text in said if text not in stderr]
    if missing:
        raise AssertionError(f"the example's stderr does not say {missing}: {stderr}")


def _expect(
    example: Example, command: Any, expected: Any, within: float, exact: bool = False
) -> None:
    deadline = time.monotonic() + within
    while True:
        answer = example.ask(command)
        if matches(expected, answer, exact=exact):
            return
        if time.monotonic() >= deadline:
            raise AssertionError(f"expected {json.dumps(expected)}, got {json.dumps(answer)}")
        time.sleep(POLL)
