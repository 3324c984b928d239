/**
 * Starts the real egress-resolver server for the live tests and stops it.
 *
 * The server listens on 127.0.0.1:0 and on a unix socket in a temp dir; the
 * bound addresses come from its "listening" JSON log line on stderr, and it is
 * ready once the "policy loaded" line follows. No fixed sleeps: every wait is
 * on an event, bounded by a generous deadline.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The repository root (this file is client/typescript/dist/test/server.js once compiled). */
export const REPO_ROOT = fileURLToPath(new URL("../../../../", import.meta.url));

const SERVER_BIN = process.env["EGRESS_RESOLVER_BIN"] ?? join(REPO_ROOT, ".venv/bin/egress-resolver");
const FIXTURE_POLICY = join(REPO_ROOT, "tests/fixtures/clients.lua");
const START_DEADLINE_MS = 60_000;
const STOP_DEADLINE_MS = 15_000;

/** A running server and the addresses it listens on. */
export interface RunningServer {
  /** "127.0.0.1:PORT" */
  readonly tcpTarget: string;
  /** "unix:/tmp/.../egress.sock" (the same path again after a restart in the same `dir`) */
  readonly unixTarget: string;
  /** The directory of the unix socket. */
  readonly dir: string;
  /** Sends SIGHUP: the server reloads its policy. */
  reload(): void;
  /** Stops the server (SIGTERM, then SIGKILL) and removes its temp dir unless it was given; safe to call twice. */
  stop(): Promise<void>;
}

/** How to start a server. */
export interface ServerOptions {
  /** The policy file (default: tests/fixtures/clients.lua). */
  readonly policy?: string;
  /** Where the unix socket goes (kept after stop); a new temp dir by default. */
  readonly dir?: string;
  /** Extra command-line flags. */
  readonly args?: readonly string[];
  /** Extra environment variables. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Starts the server; rejects (after stopping it) if it is not ready in time. */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), "egress-ts-")));
  const socketPath = join(dir, "egress.sock");
  const child = spawn(
    SERVER_BIN,
    [
      "serve",
      "--policy",
      options.policy ?? FIXTURE_POLICY,
      "--listen",
      "127.0.0.1:0",
      "--listen",
      `unix:${socketPath}`,
      "--shutdown-grace",
      "1s",
      ...(options.args ?? []),
    ],
    { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...options.env } },
  );
  const stop = async () => {
    await stopProcess(child);
    if (options.dir === undefined) {
      await rm(dir, { recursive: true, force: true });
    }
  };
  try {
    const addresses = await waitUntilReady(child);
    const tcpTarget = addresses.find((address) => address.startsWith("127.0.0.1:"));
    const unixTarget = addresses.find((address) => address.startsWith("unix:"));
    if (tcpTarget === undefined || unixTarget === undefined) {
      throw new Error(`unexpected listening addresses: ${JSON.stringify(addresses)}`);
    }
    return { tcpTarget, unixTarget, dir, reload: () => child.kill("SIGHUP"), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Reads the server's JSON log lines until the policy is loaded; returns the bound addresses. */
function waitUntilReady(child: ChildProcess): Promise<string[]> {
  const stderr = child.stderr;
  if (stderr === null) {
    return Promise.reject(new Error("server stderr is not piped"));
  }
  const seen: string[] = [];
  return new Promise((resolve, reject) => {
    let addresses: string[] | undefined;
    const lines = createInterface({ input: stderr });
    const timer = setTimeout(() => fail(`server not ready after ${START_DEADLINE_MS} ms`), START_DEADLINE_MS);
    const onExit = (code: number | null, signal: string | null) =>
      fail(`server exited early (code ${code}, signal ${signal})`);
    const onError = (error: Error) => fail(`server did not start: ${error.message}`);
    function finish() {
      clearTimeout(timer);
      child.off("exit", onExit);
      child.off("error", onError);
      // Keep draining stderr so that the server never blocks on a full pipe.
      lines.removeAllListeners("line");
      lines.on("line", () => undefined);
    }
    function fail(why: string) {
      finish();
      reject(new Error(`${why}; its log:\n${seen.join("\n")}`));
    }
    child.once("exit", onExit);
    child.once("error", onError);
    lines.on("line", (line) => {
      seen.push(line);
      const entry = parseLogLine(line);
      if (entry?.["event"] === "listening" && Array.isArray(entry["addresses"])) {
        addresses = entry["addresses"].map(String);
      } else if (entry?.["event"] === "policy loaded" && addresses !== undefined) {
        finish();
        resolve(addresses);
      }
    });
  });
}

/** A JSON log line as an object; undefined for anything else. */
function parseLogLine(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return value !== null && typeof value === "object" ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Sends SIGTERM, waits for the exit, and sends SIGKILL if it does not come in time. */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
    return;
  }
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const deadline = new Promise<"late">((resolve) => setTimeout(resolve, STOP_DEADLINE_MS, "late").unref());
  if ((await Promise.race([exited, deadline])) === "late") {
    child.kill("SIGKILL");
    await exited;
  }
}
