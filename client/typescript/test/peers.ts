/**
 * Loopback peers for the connect tests: a listener that records what each
 * connection sent and from where, and a SOCKS5 server written from kumod's
 * side of the exchange (no KumoMTA proxy can be installed here).
 */
import { once } from "node:events";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { EgressSourceSchema, type EgressSource } from "../src/gen/kumo/egress/v1/egress_source_pb.js";
import { readExactly } from "../src/proxy.js";

/** An EgressSource with these fields. */
export function source(fields: MessageInitShape<typeof EgressSourceSchema> & { name: string }): EgressSource {
  return create(EgressSourceSchema, fields);
}

/** A started server and its port; `close()` ends it and every connection it accepted. */
export interface Listening {
  readonly server: Server;
  readonly port: number;
  close(): Promise<void>;
}

/** Listens on `host`:0 with `handler` for each connection. */
export async function listen(host: string, handler: (socket: Socket) => void): Promise<Listening> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    handler(socket);
  });
  server.listen(0, host);
  await once(server, "listening");
  return {
    server,
    port: (server.address() as AddressInfo).port,
    async close() {
      for (const socket of sockets) {
        socket.destroy();
      }
      server.close();
      await once(server, "close");
    },
  };
}

/** A port on `host` on which nothing listens (a listener opened and closed). */
export async function closedPort(host: string): Promise<number> {
  const listening = await listen(host, () => undefined);
  await listening.close();
  return listening.port;
}

/** Reads a socket until it ends; resolves with the bytes. */
export function readAll(socket: Socket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on("data", (chunk: Buffer) => chunks.push(chunk));
  return new Promise((resolve) => socket.once("close", () => resolve(Buffer.concat(chunks))));
}

/** What the SOCKS5 server saw on one connection. */
export interface SocksSession {
  readonly methods: number[];
  readonly username?: string;
  readonly password?: string;
  /** The BIND request's ATYP, address bytes and port. */
  readonly bind?: Buffer;
  /** The CONNECT request's ATYP, address bytes and port. */
  readonly connect?: Buffer;
}

/** How the SOCKS5 server behaves. */
export interface SocksBehaviour {
  /** Require username/password (method 02) with these credentials. */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** The REP of the BIND reply (0: success). */
  readonly bindReply?: number;
  /** Never answer the greeting (a proxy that hangs). */
  readonly silent?: boolean;
}

/** A reply `05 REP 00 ATYP BND.ADDR BND.PORT` (IPv4 0.0.0.0:0, or a domain to exercise ATYP 3). */
function reply(rep: number, domain?: string): Buffer {
  if (domain !== undefined) {
    return Buffer.concat([Buffer.from([5, rep, 0, 3, domain.length]), Buffer.from(domain), Buffer.from([0, 25])]);
  }
  return Buffer.from([5, rep, 0, 1, 0, 0, 0, 0, 0, 0]);
}

async function request(socket: Socket): Promise<{ command: number; target: Buffer }> {
  const head = await readExactly(socket, 4);
  const length = head[3] === 1 ? 4 : 16;
  const target = await readExactly(socket, length + 2);
  return { command: head[1] as number, target: Buffer.concat([head.subarray(3, 4), target]) };
}

/**
 * kumod's peer: greeting, RFC 1929 when asked, BIND (answered with
 * `bindReply`), then CONNECT, answered with success and, as the destination,
 * an SMTP banner in the same write (the client must not consume it).
 */
export async function socksServer(host: string, behaviour: SocksBehaviour = {}) {
  const sessions: SocksSession[] = [];
  const listening = await listen(host, (socket) => {
    void (async () => {
      const greeting = await readExactly(socket, 2);
      const methods = [...(await readExactly(socket, greeting[1] as number))];
      const session: { -readonly [K in keyof SocksSession]: SocksSession[K] } = { methods };
      sessions.push(session);
      if (behaviour.silent) {
        return;
      }
      if (behaviour.credentials !== undefined) {
        socket.write(Buffer.from([5, 2]));
        const version = await readExactly(socket, 2);
        session.username = (await readExactly(socket, version[1] as number)).toString();
        const plen = (await readExactly(socket, 1))[0] as number;
        session.password = (await readExactly(socket, plen)).toString();
        const good =
          session.username === behaviour.credentials.username && session.password === behaviour.credentials.password;
        socket.write(Buffer.from([1, good ? 0 : 1]));
        if (!good) {
          socket.end();
          return;
        }
      } else {
        socket.write(Buffer.from([5, 0]));
      }
      const bind = await request(socket);
      session.bind = bind.target;
      const bindReply = behaviour.bindReply ?? 0;
      socket.write(reply(bindReply, "proxy.example"));
      if (bind.command !== 2 || bindReply !== 0) {
        socket.end();
        return;
      }
      const connect = await request(socket);
      session.connect = connect.target;
      socket.write(Buffer.concat([reply(0), Buffer.from("220 through socks\r\n")]));
    })().catch(() => socket.destroy());
  });
  return { ...listening, sessions };
}
