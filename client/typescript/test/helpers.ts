/**
 * What the live tests share: bounded waits, a fake clock, a FIFO, a policy
 * copy the tests may rewrite, and the sidecar's Invalidate RPC.
 */
import { execFile, spawn } from "node:child_process";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { EgressResolverService } from "../src/gen/kumo/egress/v1/resolver_service_pb.js";
import { parseTarget } from "../src/target.js";

/** Generous: the machine may be loaded. */
export const DEADLINE_MS = 30_000;

/** The fixture of the cache tests (client/typescript/test/fixtures/cache.lua). */
export const CACHE_POLICY = fileURLToPath(new URL("../../test/fixtures/cache.lua", import.meta.url));

/** The fixture of the connect, suspension and Haraka tests (client/typescript/test/fixtures/connect.lua). */
export const CONNECT_POLICY = fileURLToPath(new URL("../../test/fixtures/connect.lua", import.meta.url));

/** Resolves once `predicate()` holds (checked every 5 ms); rejects after DEADLINE_MS. */
export async function until(predicate: () => boolean, what: string): Promise<void> {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > DEADLINE_MS) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** A clock the test moves by hand, in milliseconds. */
export class FakeClock {
  constructor(public now = 1_000_000) {}
  readonly read = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}

/** A temp dir with a copy of the cache fixture whose VERSION line the test may change. */
export interface PolicyCopy {
  readonly dir: string;
  readonly policy: string;
  /** Sets `local VERSION = '<version>'`. */
  setVersion(version: string): Promise<void>;
  remove(): Promise<void>;
}

export async function copyPolicy(): Promise<PolicyCopy> {
  const dir = await mkdtemp(join(tmpdir(), "egress-ts-policy-"));
  const policy = join(dir, "cache.lua");
  await copyFile(CACHE_POLICY, policy);
  return {
    dir,
    policy,
    async setVersion(version) {
      const text = await readFile(policy, "utf8");
      const changed = text.replace(/^local VERSION = '[^']*'$/m, `local VERSION = '${version}'`);
      if (changed === text && !text.includes(`local VERSION = '${version}'`)) {
        throw new Error("the policy has no VERSION line");
      }
      await writeFile(policy, changed);
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Makes a named pipe (the `wait-*` names of the fixture block on it). */
export async function mkfifo(path: string): Promise<void> {
  await promisify(execFile)("mkfifo", [path]);
}

/** Calls the sidecar's Invalidate RPC; returns the sequence that announced it. */
export async function invalidate(
  target: string,
  request: { names?: string[]; poolNames?: string[]; all?: boolean },
): Promise<bigint> {
  const { baseUrl, sessionOptions } = parseTarget(target);
  const sessionManager = new Http2SessionManager(baseUrl, {}, sessionOptions);
  const client = createClient(EgressResolverService, createGrpcTransport({ baseUrl, sessionManager }));
  try {
    const response = await client.invalidate(request, { timeoutMs: DEADLINE_MS });
    return response.sequence;
  } finally {
    sessionManager.abort();
  }
}

/** The compiled example program. */
export const EXAMPLE_PROGRAM = fileURLToPath(new URL("../src/example.js", import.meta.url));

/** The example program reading commands on stdin: one JSON answer per command. */
export interface ExampleSession {
  ask(command: unknown): Promise<unknown>;
  /** Ends stdin; resolves with the exit status and what went to stderr. */
  end(): Promise<{ status: number | null; stderr: string }>;
}

export function startExample(args: readonly string[], env: Readonly<Record<string, string>> = {}): ExampleSession {
  const child = spawn(process.execPath, [EXAMPLE_PROGRAM, ...args], {
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async ask(command) {
      child.stdin.write(`${JSON.stringify(command)}\n`);
      const timer = new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`no answer to ${JSON.stringify(command)}; stderr: ${stderr}`)), DEADLINE_MS).unref(),
      );
      const next = await Promise.race([lines.next(), timer]);
      if (next.done) {
        throw new Error(`the example ended; stderr: ${stderr}`);
      }
      return JSON.parse(next.value) as unknown;
    },
    async end() {
      child.stdin.end();
      const deadline = setTimeout(() => child.kill("SIGKILL"), DEADLINE_MS);
      const status = await exited;
      clearTimeout(deadline);
      return { status, stderr };
    },
  };
}
