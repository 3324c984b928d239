/**
 * connect through a source, on real loopback sockets: the bind of
 * source_address seen by the peer, remote_port, the PROXY v2 header as a
 * loopback server reads it, SOCKS5 against a server speaking kumod's side,
 * and the failure classes. The sidecar is not needed here (the sources are
 * given, not named); reports go to a port where nothing listens, and their
 * failure must not change connect's error.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createResolver, ResolverError, type Resolver } from "../src/client.js";
import { proxyV2Header } from "../src/proxy.js";
import { create } from "@bufbuild/protobuf";
import { VaultKeySourceSchema } from "../src/gen/kumo/egress/v1/egress_source_pb.js";
import { closedPort, listen, readAll, socksServer, source } from "./peers.js";
import { createTransport } from "nodemailer";
import { SMTPServer } from "smtp-server";

/** Asserts a ResolverError UNAVAILABLE with this reason for `name`; returns its message. */
async function failsWith(promise: Promise<unknown>, reason: string, name: string): Promise<string> {
  const error = await promise.then(
    () => assert.fail(`expected ${reason}`),
    (rejection: unknown) => rejection,
  );
  assert.ok(error instanceof ResolverError, String(error));
  assert.equal(error.code, "UNAVAILABLE");
  assert.equal(error.reason, reason, error.message);
  assert.equal(error.name, name);
  return error.message;
}

/** The first line the socket receives. */
async function firstLine(socket: Socket): Promise<string> {
  socket.setEncoding("latin1");
  let text = "";
  while (!text.includes("\r\n")) {
    const [chunk] = (await once(socket, "data")) as [string];
    text += chunk;
  }
  return text.slice(0, text.indexOf("\r\n"));
}

describe("connect", () => {
  let resolver: Resolver;

  before(async () => {
    resolver = createResolver({ target: `127.0.0.1:${await closedPort("127.0.0.1")}`, timeout: 5 });
  });

  after(async () => {
    await resolver.close();
  });

  test("binds source_address (the peer sees 127.0.0.2), remote_port replaces the port, ehlo_domain is given", async () => {
    const peers: string[] = [];
    const smtp = await listen("127.0.0.1", (socket) => {
      peers.push(socket.remoteAddress ?? "");
      socket.write("220 recorder\r\n");
    });
    try {
      const wrongPort = await closedPort("127.0.0.1");
      const definition = source({
        name: "ip-2",
        sourceAddress: "127.0.0.2",
        ehloDomain: "mta2.example.com",
        remotePort: smtp.port,
      });
      const { socket, ehlo } = await resolver.connect(definition, `127.0.0.1:${wrongPort}`);
      assert.equal(ehlo, "mta2.example.com");
      assert.equal(socket.localAddress, "127.0.0.2");
      assert.equal(await firstLine(socket), "220 recorder");
      socket.destroy();
      assert.deepEqual(peers, ["127.0.0.2"]);
    } finally {
      await smtp.close();
    }
  });

  test("the README's lines: connect, then nodemailer sends on the socket, from 127.0.0.2 with the ehlo_domain", async () => {
    const seen: string[][] = [];
    const server = new SMTPServer({
      disabledCommands: ["STARTTLS", "AUTH"],
      disableReverseLookup: true,
      logger: false,
      onData(stream, session, callback) {
        stream.resume();
        stream.once("end", () => {
          seen.push([session.remoteAddress, session.hostNameAppearsAs, session.envelope.rcptTo[0]?.address ?? ""]);
          callback();
        });
      },
    });
    server.listen(0, "127.0.0.1");
    await once(server.server, "listening");
    try {
      const to = `127.0.0.1:${(server.server.address() as { port: number }).port}`;
      const definition = source({ name: "ip-2", sourceAddress: "127.0.0.2", ehloDomain: "mta2.example.com" });
      const { socket, ehlo } = await resolver.connect(definition, to);
      const mail = createTransport({ name: ehlo, getSocket: (_, done) => done(null, { connection: socket }) });
      await mail.sendMail({ from: "a@example.org", to: "b@example.com", subject: "hi", text: "hello" });
      mail.close();
      assert.deepEqual(seen, [["127.0.0.2", "mta2.example.com", "b@example.com"]]);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  test("an unbound source connects directly, also to [::1], and says the host name in EHLO", async () => {
    const smtp = await listen("::1", (socket) => socket.write("220 six\r\n"));
    try {
      const { socket, ehlo } = await resolver.connect(source({ name: "plain" }), `[::1]:${smtp.port}`);
      assert.ok(ehlo.length > 0);
      assert.equal(await firstLine(socket), "220 six");
      socket.destroy();
    } finally {
      await smtp.close();
    }
  });

  test("HAProxy: the proxy reads the PROXY v2 header (IPv4) before any other byte", async () => {
    const received: Promise<Buffer>[] = [];
    const proxy = await listen("127.0.0.1", (socket) => {
      received.push(readAll(socket));
      socket.write("220 via haproxy\r\n");
    });
    try {
      const definition = source({
        name: "ha-1",
        haProxyServer: `127.0.0.1:${proxy.port}`,
        haProxySourceAddress: "10.1.2.3",
      });
      const { socket } = await resolver.connect(definition, "192.0.2.7:2525");
      assert.equal(await firstLine(socket), "220 via haproxy");
      socket.end("QUIT\r\n");
      const bytes = await received[0];
      const expected = Buffer.from([
        ...Buffer.from("\r\n\r\n\0\r\nQUIT\n", "latin1"),
        0x21, 0x11, 0x00, 0x0c,
        10, 1, 2, 3,
        192, 0, 2, 7,
        0x00, 0x00,
        0x09, 0xdd,
      ]);
      assert.deepEqual(bytes, Buffer.concat([expected, Buffer.from("QUIT\r\n")]));
    } finally {
      await proxy.close();
    }
  });

  test("HAProxy over IPv6: 0x21 and a 36-byte address block; the proxy host name is resolved", async () => {
    const header = proxyV2Header("2001:db8::5", "2001:db8::7", 25);
    assert.equal(header.length, 16 + 36);
    assert.deepEqual([...header.subarray(12, 16)], [0x21, 0x21, 0x00, 0x24]);
    assert.deepEqual([...header.subarray(16, 32)], [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 5]);
    assert.deepEqual([...header.subarray(48, 52)], [0, 0, 0, 25]);
    const received: Promise<Buffer>[] = [];
    const proxy = await listen("127.0.0.1", (socket) => received.push(readAll(socket)));
    try {
      const definition = source({ name: "ha-6", haProxyServer: `localhost:${proxy.port}`, haProxySourceAddress: "2001:db8::5" });
      const { socket } = await resolver.connect(definition, "[2001:db8::7]:25");
      socket.end();
      assert.deepEqual(await received[0], header);
    } finally {
      await proxy.close();
    }
  });

  test("HAProxy with a source address of the other family than the destination: PROXY_UNHEALTHY", async () => {
    const definition = source({ name: "ha-x", haProxyServer: "127.0.0.1:9", haProxySourceAddress: "2001:db8::5" });
    const message = await failsWith(resolver.connect(definition, "192.0.2.7:25"), "PROXY_UNHEALTHY", "ha-x");
    assert.match(message, /address family does not match/);
  });

  test("source_address 192.0.2.1 is not on the host: SOURCE_UNPLUMBED naming the source, address and cause", async () => {
    const definition = source({ name: "ip-9", sourceAddress: "192.0.2.1" });
    const message = await failsWith(resolver.connect(definition, "127.0.0.1:25"), "SOURCE_UNPLUMBED", "ip-9");
    assert.match(message, /^source ip-9: bind 192\.0\.2\.1:0: cannot assign requested address \(EADDRNOTAVAIL\)$/);
  });

  test("a proxy that refuses connections: PROXY_UNHEALTHY", async () => {
    const port = await closedPort("127.0.0.1");
    const definition = source({ name: "px-1", socks5ProxyServer: `127.0.0.1:${port}`, socks5ProxySourceAddress: "10.0.0.2" });
    const message = await failsWith(resolver.connect(definition, "192.0.2.7:25"), "PROXY_UNHEALTHY", "px-1");
    assert.equal(message, `source px-1: proxy 127.0.0.1:${port}: connection refused (ECONNREFUSED)`);
  });

  test("a destination that refuses connections: CONNECT_FAILED", async () => {
    const port = await closedPort("127.0.0.1");
    const definition = source({ name: "ip-1", sourceAddress: "127.0.0.3" });
    const message = await failsWith(resolver.connect(definition, `127.0.0.1:${port}`), "CONNECT_FAILED", "ip-1");
    assert.equal(message, `source ip-1: connect 127.0.0.1:${port}: connection refused (ECONNREFUSED)`);
  });

  test("proxy candidates of the other family than source_address are dropped", async () => {
    const definition = source({
      name: "px-6",
      sourceAddress: "::1",
      socks5ProxyServer: "127.0.0.1:1080",
      socks5ProxySourceAddress: "10.0.0.2",
    });
    const message = await failsWith(resolver.connect(definition, "192.0.2.7:25"), "PROXY_UNHEALTHY", "px-6");
    assert.match(message, /no socks5_proxy_server candidates remain after filtering 1 resolved address\(es\) to match source_address ::1 family/);
  });

  test("a unix-path proxy is refused", async () => {
    const definition = source({ name: "px-u", haProxyServer: "/run/haproxy.sock", haProxySourceAddress: "10.0.0.2" });
    await failsWith(resolver.connect(definition, "192.0.2.7:25"), "PROXY_UNHEALTHY", "px-u");
  });

  test("one deadline for the whole attempt: a proxy that never answers fails at the deadline", async () => {
    const silent = await socksServer("127.0.0.1", { silent: true });
    try {
      const definition = source({ name: "px-s", socks5ProxyServer: `127.0.0.1:${silent.port}`, socks5ProxySourceAddress: "10.0.0.2" });
      const started = performance.now();
      const message = await failsWith(
        resolver.connect(definition, "192.0.2.7:25", { timeoutMs: 300 }),
        "PROXY_UNHEALTHY",
        "px-s",
      );
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 290, `failed after ${elapsed} ms`);
      assert.match(message, /deadline passed while performing the proxy handshake/);
    } finally {
      await silent.close();
    }
  });

  test("the connectTimeout option is the default deadline", async () => {
    const silent = await socksServer("127.0.0.1", { silent: true });
    const quick = createResolver({ target: resolver.options.target, connectTimeout: "200ms" });
    try {
      const definition = source({ name: "px-s", socks5ProxyServer: `127.0.0.1:${silent.port}`, socks5ProxySourceAddress: "10.0.0.2" });
      await failsWith(quick.connect(definition, "192.0.2.7:25"), "PROXY_UNHEALTHY", "px-s");
    } finally {
      await quick.close();
      await silent.close();
    }
  });
});

describe("connect through SOCKS5 (a server from kumod's side of the exchange)", () => {
  let resolver: Resolver;
  let dir: string;

  before(async () => {
    resolver = createResolver({ target: `127.0.0.1:${await closedPort("127.0.0.1")}`, timeout: 5 });
    dir = await mkdtemp(join(tmpdir(), "egress-ts-socks-"));
  });

  after(async () => {
    await resolver.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("no auth: BIND of the source address, then CONNECT; the banner is left unread", async () => {
    const proxy = await socksServer("127.0.0.1");
    try {
      const definition = source({ name: "sx-1", socks5ProxyServer: `127.0.0.1:${proxy.port}`, socks5ProxySourceAddress: "10.0.0.2" });
      const { socket } = await resolver.connect(definition, "192.0.2.7:2525");
      assert.equal(await firstLine(socket), "220 through socks");
      socket.destroy();
      const [session] = proxy.sessions;
      assert.deepEqual(session?.methods, [0]);
      assert.deepEqual([...(session?.bind ?? [])], [1, 10, 0, 0, 2, 0, 0]);
      assert.deepEqual([...(session?.connect ?? [])], [1, 192, 0, 2, 7, 0x09, 0xdd]);
    } finally {
      await proxy.close();
    }
  });

  test("username and password (RFC 1929) from a key file, over IPv6", async () => {
    const keyFile = join(dir, "socks.key");
    await writeFile(keyFile, "s3cret");
    const proxy = await socksServer("::1", { credentials: { username: "mta", password: "s3cret" } });
    try {
      const definition = source({
        name: "sx-6",
        socks5ProxyServer: `[::1]:${proxy.port}`,
        socks5ProxySourceAddress: "2001:db8::2",
        socks5ProxyUsername: "mta",
        socks5ProxyPassword: { source: { case: "file", value: keyFile } },
      });
      const { socket } = await resolver.connect(definition, "[2001:db8::25]:25");
      assert.equal(await firstLine(socket), "220 through socks");
      socket.destroy();
      const [session] = proxy.sessions;
      assert.deepEqual(session?.methods, [0, 2]);
      assert.equal(session?.password, "s3cret");
      assert.equal(session?.bind?.[0], 4);
      assert.deepEqual([...(session?.connect ?? Buffer.alloc(0)).subarray(1)], [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 0x25, 0, 25]);
    } finally {
      await proxy.close();
    }
  });

  test("a wrong password, a vault KeySource and a refused BIND are PROXY_UNHEALTHY", async () => {
    const proxy = await socksServer("127.0.0.1", { credentials: { username: "mta", password: "right" } });
    const refusing = await socksServer("127.0.0.1", { bindReply: 1 });
    try {
      const base = { socks5ProxyServer: `127.0.0.1:${proxy.port}`, socks5ProxySourceAddress: "10.0.0.2", socks5ProxyUsername: "mta" };
      const wrong = source({ name: "sx-w", ...base, socks5ProxyPassword: { source: { case: "keyData", value: "wrong" } } });
      assert.match(await failsWith(resolver.connect(wrong, "192.0.2.7:25"), "PROXY_UNHEALTHY", "sx-w"), /SOCKS5 username\/password was incorrect/);
      const vault = source({ name: "sx-v", ...base, socks5ProxyPassword: { source: { case: "vault", value: create(VaultKeySourceSchema, { vaultPath: "secret/x", vaultMount: "kv" }) } } });
      assert.match(
        await failsWith(resolver.connect(vault, "192.0.2.7:25"), "PROXY_UNHEALTHY", "sx-v"),
        /vault KeySource is not supported by the egress-resolver clients; use key_data or a file/,
      );
      const bind = source({ name: "sx-b", socks5ProxyServer: `127.0.0.1:${refusing.port}`, socks5ProxySourceAddress: "10.0.0.9" });
      assert.match(await failsWith(resolver.connect(bind, "192.0.2.7:25"), "PROXY_UNHEALTHY", "sx-b"), /the proxy server failed to bind 10\.0\.0\.9/);
    } finally {
      await proxy.close();
      await refusing.close();
    }
  });
});
