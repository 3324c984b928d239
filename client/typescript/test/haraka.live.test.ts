/**
 * The Haraka plugin (haraka/egress) in real Haraka (one process, no cluster)
 * against a real sidecar (test/fixtures/connect.lua): 100 messages relayed
 * through Haraka reach a loopback SMTP recorder (smtp-server) from the pool's
 * three 127.0.0.x sources in kumod's weighted round-robin proportions
 * (5/2/3: 50/20/30), each with its source's EHLO name. A message whose
 * X-Egress-Pool header names a pool of a proxied source is deferred with a
 * clear log line; one whose source address is not on the host is reported,
 * and the sidecar suspends the source.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { cp, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { createTransport } from "nodemailer";
import { SMTPServer } from "smtp-server";
import { createResolver, type Resolver } from "../src/client.js";
import { CONNECT_POLICY, DEADLINE_MS } from "./helpers.js";
import { startServer, type RunningServer } from "./server.js";

const PLUGIN_DIR = fileURLToPath(new URL("../../haraka/egress", import.meta.url));
const HARAKA_DIR = dirname(createRequire(import.meta.url).resolve("Haraka/package.json"));
const HARAKA_BIN = join(HARAKA_DIR, "bin", "haraka");
const MESSAGES = 100;
/** Generous: 100 deliveries on a loaded 2-core machine. */
const DELIVERY_DEADLINE_MS = 120_000;

interface Delivery {
  readonly peer: string;
  readonly ehlo: string;
  readonly rcpt: string;
}

/** A loopback SMTP server that records each message's peer address and EHLO name. */
async function startRecorder() {
  const deliveries: Delivery[] = [];
  const waiters: (() => void)[] = [];
  const server = new SMTPServer({
    disabledCommands: ["STARTTLS", "AUTH"],
    disableReverseLookup: true,
    logger: false,
    onData(stream, session, callback) {
      stream.resume();
      stream.once("end", () => {
        for (const rcpt of session.envelope.rcptTo) {
          deliveries.push({ peer: session.remoteAddress, ehlo: session.hostNameAppearsAs, rcpt: rcpt.address });
        }
        callback();
        waiters.splice(0).forEach((wake) => wake());
      });
    },
  });
  server.listen(0, "127.0.0.1");
  await once(server.server, "listening");
  return {
    deliveries,
    port: (server.server.address() as AddressInfo).port,
    /** Resolves once `n` messages arrived; rejects after `ms`. */
    async waitFor(n: number, ms: number): Promise<void> {
      const started = Date.now();
      while (deliveries.length < n) {
        const left = ms - (Date.now() - started);
        if (left <= 0) {
          throw new Error(`${deliveries.length} of ${n} messages arrived in ${ms} ms`);
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/**
 * Haraka's configuration in `dir`: its default configuration (an installed
 * Haraka reads only its own config dir), then listening on a free loopback
 * port, relaying for 127.0.0.1, and the egress plugin before any other.
 */
async function configure(dir: string, target: string, relay: string): Promise<void> {
  const config = join(dir, "config");
  await cp(join(HARAKA_DIR, "config"), config, { recursive: true });
  await mkdir(join(dir, "plugins"));
  await symlink(PLUGIN_DIR, join(dir, "plugins", "egress"));
  const files: Record<string, string> = {
    "smtp.ini": "[main]\nlisten=127.0.0.1:0\nnodes=0\n",
    plugins: "egress\nrelay\n",
    "relay.ini": "[relay]\nacl=true\n",
    relay_acl_allow: "127.0.0.1/32\n",
    me: "haraka.test\n",
    "log.ini": "[main]\nlevel=info\ntimestamps=false\n",
    "egress.ini": `[main]\ntarget=${target}\npool=haraka\nrelay=${relay}\ncache=true\n`,
  };
  for (const [name, text] of Object.entries(files)) {
    await writeFile(join(config, name), text);
  }
}

/** Starts Haraka on `dir`; resolves with its SMTP port once it listens. Its output lines go to `log`. */
async function startHaraka(dir: string, log: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [HARAKA_BIN, "-c", dir], { stdio: ["ignore", "pipe", "pipe"] });
  const port = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Haraka did not listen in time:\n${log.join("\n")}`)), DEADLINE_MS);
    child.once("exit", (code) => reject(new Error(`Haraka exited (${code}):\n${log.join("\n")}`)));
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on("line", (line) => {
        log.push(line);
        const listening = /Listening on 127\.0\.0\.1:(\d+)/.exec(line);
        if (listening) {
          clearTimeout(timer);
          resolve(Number(listening[1]));
        }
      });
    }
  });
  try {
    return { child, port: await port };
  } catch (error) {
    await stop(child);
    throw error;
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return;
  }
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), DEADLINE_MS);
  await exited;
  clearTimeout(timer);
}

describe("the Haraka plugin in real Haraka", () => {
  let sidecar: RunningServer | undefined;
  let recorder: Awaited<ReturnType<typeof startRecorder>> | undefined;
  let haraka: ChildProcess | undefined;
  let harakaPort = 0;
  let dir = "";
  let watcher: Resolver;
  const log: string[] = [];

  before(async () => {
    sidecar = await startServer({ policy: CONNECT_POLICY });
    recorder = await startRecorder();
    dir = await mkdtemp(join(tmpdir(), "egress-ts-haraka-"));
    await configure(dir, sidecar.tcpTarget, `127.0.0.1:${recorder.port}`);
    ({ child: haraka, port: harakaPort } = await startHaraka(dir, log));
    watcher = createResolver({ target: sidecar.tcpTarget, cache: true, timeoutMs: DEADLINE_MS });
  });

  after(async () => {
    if (haraka !== undefined) {
      await stop(haraka);
    }
    await watcher?.close();
    await recorder?.close();
    await sidecar?.stop();
    if (dir) {
      await rm(dir, { recursive: true, force: true });
    }
  });

  /** Resolves once a line of Haraka's log matches `pattern`; fails after DEADLINE_MS. */
  async function logged(pattern: RegExp): Promise<void> {
    const started = Date.now();
    while (!log.some((line) => pattern.test(line))) {
      if (Date.now() - started > DEADLINE_MS) {
        assert.fail(`no line matching ${pattern} in Haraka's log:\n${log.slice(-20).join("\n")}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Sends messages into Haraka over one SMTP connection. */
  async function send(messages: { to: string; headers?: Record<string, string> }[]): Promise<void> {
    const transport = createTransport({ host: "127.0.0.1", port: harakaPort, secure: false, ignoreTLS: true, pool: true, maxConnections: 1 });
    try {
      for (const message of messages) {
        await transport.sendMail({ from: "sender@haraka.test", subject: "egress", text: "hello\n", ...message });
      }
    } finally {
      transport.close();
    }
  }

  test("100 messages leave from the pool's sources, 50/20/30, each with its EHLO name", async () => {
    assert.ok(recorder !== undefined);
    await send(Array.from({ length: MESSAGES }, (_, i) => ({ to: `rcpt-${i}@example.com` })));
    await recorder.waitFor(MESSAGES, DELIVERY_DEADLINE_MS).catch((error: Error) => {
      throw new Error(`${error.message}; Haraka's log:\n${log.slice(-40).join("\n")}`);
    });
    const byPeer: Record<string, number> = {};
    const ehloOf: Record<string, Set<string>> = {};
    for (const delivery of recorder.deliveries) {
      byPeer[delivery.peer] = (byPeer[delivery.peer] ?? 0) + 1;
      (ehloOf[delivery.peer] ??= new Set()).add(delivery.ehlo);
    }
    assert.deepEqual(byPeer, { "127.0.0.2": 50, "127.0.0.3": 20, "127.0.0.4": 30 });
    assert.deepEqual(
      Object.fromEntries(Object.entries(ehloOf).map(([peer, names]) => [peer, [...names]])),
      { "127.0.0.2": ["mta2.example.com"], "127.0.0.3": ["mta3.example.com"], "127.0.0.4": ["mta4.example.com"] },
    );
    assert.equal(new Set(recorder.deliveries.map((d) => d.rcpt)).size, MESSAGES);
  });

  test("X-Egress-Pool picks the pool: a proxied source is refused with a clear log line, not sent directly", async () => {
    assert.ok(recorder !== undefined);
    const before = recorder.deliveries.length;
    await send([{ to: "proxied@example.com", headers: { "X-Egress-Pool": "proxied" } }]);
    await logged(/source socks of pool proxied connects through a proxy .*deferred, not sent directly/);
    assert.equal(recorder.deliveries.length, before);
  });

  test("a source whose address is not on the host is reported: the sidecar suspends it for every client", async () => {
    assert.ok(await watcher.waitUntilWatching(DEADLINE_MS));
    // Pool "down" is ip-9 and ip-8: its first pick is ip-8 (192.0.2.8), which cannot be bound here.
    await send([{ to: "down@example.com", headers: { "X-Egress-Pool": "down" } }]);
    const known = await watcher.whenSuspended("ip-8", DEADLINE_MS);
    assert.ok(known !== undefined, `ip-8 was not suspended; Haraka's log:\n${log.slice(-20).join("\n")}`);
    await logged(/egress: reported source ip-8: bind 192\.0\.2\.8:0: .*EADDRNOTAVAIL.*ip-8 is suspended until/);
  });
});
