/**
 * The little SMTP the example program speaks on a connection `connect`
 * returned (read the banner, EHLO, read the reply, QUIT), and its
 * connect benchmark. Not part of the client's API.
 */
import { connect as tcpConnect, type Socket } from "node:net";
import type { Resolver } from "./client.js";
import { splitHostPort } from "./address.js";
import type { Connection } from "./connect.js";
import type { EgressSource } from "./gen/kumo/egress/v1/egress_source_pb.js";

/** Reads SMTP replies (one or more `NNN-` lines, then `NNN `) from a socket. */
class ReplyReader {
  private buffer = "";
  private readonly lines: string[] = [];
  private wake: (() => void) | undefined;
  private failure: Error | undefined;

  constructor(socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      let end: number;
      while ((end = this.buffer.indexOf("\n")) >= 0) {
        this.lines.push(this.buffer.slice(0, end).replace(/\r$/, ""));
        this.buffer = this.buffer.slice(end + 1);
      }
      this.wake?.();
    });
    const ended = (error?: Error) => {
      this.failure ??= error ?? new Error("the server closed the connection");
      this.wake?.();
    };
    socket.once("end", () => ended());
    socket.once("error", ended);
  }

  /** The next complete reply's lines; rejects when the connection ends first. */
  async reply(): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const line = this.lines.shift();
      if (line === undefined) {
        if (this.failure !== undefined) {
          throw this.failure;
        }
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        continue;
      }
      lines.push(line);
      if (!/^\d{3}-/.test(line)) {
        return lines;
      }
    }
  }
}

/** Fails with `what` unless `promise` settles within `timeoutMs`. */
function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Reads the banner, says `EHLO <ehlo>`, reads the reply, says QUIT and closes. */
export async function greet(connection: Connection, timeoutMs: number): Promise<void> {
  const { socket, ehlo } = connection;
  const replies = new ReplyReader(socket);
  try {
    const exchange = async () => {
      const banner = await replies.reply();
      if (!banner[0]?.startsWith("220")) {
        throw new Error(`unexpected banner ${JSON.stringify(banner)}`);
      }
      socket.write(`EHLO ${ehlo}\r\n`);
      const answer = await replies.reply();
      if (!answer.at(-1)?.startsWith("250")) {
        throw new Error(`EHLO refused: ${JSON.stringify(answer)}`);
      }
      socket.write("QUIT\r\n");
      await replies.reply().catch(() => undefined);
    };
    await within(exchange(), timeoutMs, "SMTP exchange");
  } finally {
    socket.destroy();
  }
}

/** Closes the socket and waits until it is closed. */
function close(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.once("close", () => resolve());
    socket.destroy();
  });
}

function median(values: bigint[]): number {
  const sorted = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return sorted.length === 0 ? 0 : Number(sorted[Math.floor(sorted.length / 2)]);
}

/** The median of N `connect` + close, and of N plain TCP connects + close to the same address. */
export async function benchConnect(
  resolver: Resolver,
  source: EgressSource,
  to: string,
  n: number,
): Promise<{ connectNs: number; plainNs: number }> {
  const { host, port } = splitHostPort(to);
  const plainPort = source.remotePort || port;
  const connects: bigint[] = [];
  const plains: bigint[] = [];
  for (let i = 0; i < n; i++) {
    let started = process.hrtime.bigint();
    const { socket } = await resolver.connect(source, to);
    await close(socket);
    connects.push(process.hrtime.bigint() - started);
    started = process.hrtime.bigint();
    const plain = tcpConnect({ host, port: plainPort, noDelay: true });
    await new Promise<void>((resolve, reject) => {
      plain.once("connect", resolve);
      plain.once("error", reject);
    });
    await close(plain);
    plains.push(process.hrtime.bigint() - started);
  }
  return { connectNs: median(connects), plainNs: median(plains) };
}
