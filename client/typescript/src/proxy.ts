/**
 * The two proxy protocols kumod speaks on a connection it opened to a proxy
 * (crates/kumod/src/egress_source.rs, `perform_handshake`):
 *
 * - HAProxy: a PROXY protocol v2 header (PROXY command, TCP) before any other
 *   byte, naming `ha_proxy_source_address`:0 as the source and the
 *   destination as the destination;
 * - SOCKS5 (RFC 1928): the greeting (no auth, and username/password when
 *   both are configured), RFC 1929 authentication when the server picks it,
 *   then BIND of `socks5_proxy_source_address` and CONNECT to the destination.
 *
 * Hand-written: the v2 header is 28 or 52 fixed bytes; and the npm SOCKS
 * clients issue one command per connection, while kumod's exchange sends
 * BIND then CONNECT on the same one. Every reply is read in full and nothing
 * past it: the next byte on the socket is the SMTP server's banner.
 */
import { isIPv4, type Socket } from "node:net";

/** The PROXY protocol v2 signature. */
const V2_SIGNATURE = Buffer.from("\r\n\r\n\0\r\nQUIT\n", "latin1");

/** The 4 or 16 bytes of an IP literal. */
export function ipBytes(ip: string): Buffer {
  if (isIPv4(ip)) {
    return Buffer.from(ip.split(".").map(Number));
  }
  const bare = ip.replace(/%.*$/, ""); // a zone index is not part of the address
  const text = bare.includes(".") ? embeddedV4(bare) : bare;
  const [head = "", tail = ""] = text.split("::");
  const words = (part: string) => (part === "" ? [] : part.split(":").map((word) => parseInt(word, 16)));
  const left = words(head);
  const right = text.includes("::") ? words(tail) : [];
  const middle = new Array<number>(8 - left.length - right.length).fill(0);
  const bytes = Buffer.alloc(16);
  [...left, ...middle, ...right].forEach((word, i) => bytes.writeUInt16BE(word, i * 2));
  return bytes;
}

/** `::ffff:1.2.3.4` with its last 32 bits written as two hex words. */
function embeddedV4(ip: string): string {
  const at = ip.lastIndexOf(":");
  const v4 = ip.slice(at + 1).split(".").map(Number);
  const hex = (a: number, b: number) => ((a << 8) | b).toString(16);
  return `${ip.slice(0, at)}:${hex(v4[0] ?? 0, v4[1] ?? 0)}:${hex(v4[2] ?? 0, v4[3] ?? 0)}`;
}

/**
 * The PROXY protocol v2 header: PROXY, TCP over IPv4 (0x11) or IPv6 (0x21),
 * source `sourceIp`:0, destination `destinationIp`:`destinationPort`. The
 * two addresses are of one family (the caller checked).
 */
export function proxyV2Header(sourceIp: string, destinationIp: string, destinationPort: number): Buffer {
  const source = ipBytes(sourceIp);
  const destination = ipBytes(destinationIp);
  const v4 = source.length === 4;
  const ports = Buffer.alloc(4);
  ports.writeUInt16BE(0, 0);
  ports.writeUInt16BE(destinationPort, 2);
  const length = Buffer.alloc(2);
  length.writeUInt16BE(source.length * 2 + 4);
  return Buffer.concat([V2_SIGNATURE, Buffer.from([0x21, v4 ? 0x11 : 0x21]), length, source, destination, ports]);
}

/** A proxy's handshake failed (PROXY_UNHEALTHY, like a proxy that cannot be reached). */
export class HandshakeError extends Error {
  override readonly name = "HandshakeError";
}

/** Reads exactly `n` bytes (leaving the rest in the socket's buffer); rejects when the socket ends first. */
export function readExactly(socket: Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const chunk = socket.read(n) as Buffer | null;
      if (chunk === null) {
        return;
      }
      finish();
      if (chunk.length < n) {
        reject(new HandshakeError(`the proxy closed the connection (${chunk.length} of ${n} bytes read)`));
      } else {
        resolve(chunk);
      }
    };
    const onEnd = () => {
      finish();
      reject(new HandshakeError(`the proxy closed the connection before sending ${n} bytes`));
    };
    const onError = (error: Error) => {
      finish();
      reject(error);
    };
    function finish() {
      socket.off("readable", attempt);
      socket.off("end", onEnd);
      socket.off("close", onEnd);
      socket.off("error", onError);
    }
    socket.on("readable", attempt);
    socket.once("end", onEnd);
    socket.once("close", onEnd);
    socket.once("error", onError);
    attempt();
    if (socket.readableEnded || socket.destroyed) {
      onEnd(); // ended before this read began (settled already if attempt() found the bytes)
    }
  });
}

function write(socket: Socket, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => socket.write(bytes, (error) => (error ? reject(error) : resolve())));
}

/** What the SOCKS5 exchange needs. */
export interface Socks5Request {
  /** The address the proxy binds (BIND), port 0. */
  readonly sourceIp: string;
  readonly destinationIp: string;
  readonly destinationPort: number;
  /** Username and password, when both are configured. */
  readonly credentials?: { readonly username: string; readonly password: () => Promise<Buffer> };
}

/** `ATYP ADDR PORT` of an IP literal. */
function address(ip: string, port: number): Buffer {
  const bytes = ipBytes(ip);
  const portBytes = Buffer.alloc(2);
  portBytes.writeUInt16BE(port);
  return Buffer.concat([Buffer.from([bytes.length === 4 ? 0x01 : 0x04]), bytes, portBytes]);
}

/** RFC 1928 reply codes. */
const REPLIES: Readonly<Record<number, string>> = {
  0x01: "general SOCKS server failure",
  0x02: "connection not allowed by ruleset",
  0x03: "network unreachable",
  0x04: "host unreachable",
  0x05: "connection refused",
  0x06: "TTL expired",
  0x07: "command not supported",
  0x08: "address type not supported",
};

/** Reads one `05 REP 00 ATYP BND.ADDR BND.PORT` reply in full; returns REP. */
async function readReply(socket: Socket): Promise<number> {
  const head = await readExactly(socket, 4);
  if (head[0] !== 0x05) {
    throw new HandshakeError(`invalid SOCKS5 reply version ${head[0]}`);
  }
  const atyp = head[3];
  let rest: number;
  if (atyp === 0x01) {
    rest = 4;
  } else if (atyp === 0x04) {
    rest = 16;
  } else if (atyp === 0x03) {
    rest = (await readExactly(socket, 1))[0] as number;
  } else {
    throw new HandshakeError(`invalid SOCKS5 reply address type ${atyp}`);
  }
  await readExactly(socket, rest + 2);
  return head[1] as number;
}

function replyText(code: number): string {
  return `reply ${code} (${REPLIES[code] ?? "unknown"})`;
}

/** kumod's SOCKS5 exchange on `socket`, connected to the proxy. */
export async function socks5Handshake(socket: Socket, request: Socks5Request): Promise<void> {
  const credentials = request.credentials;
  await write(socket, Buffer.from(credentials ? [0x05, 0x02, 0x00, 0x02] : [0x05, 0x01, 0x00]));
  const choice = await readExactly(socket, 2);
  if (choice[0] !== 0x05) {
    throw new HandshakeError(`invalid SOCKS5 greeting reply version ${choice[0]}`);
  }
  if (choice[1] === 0x02 && credentials !== undefined) {
    const user = Buffer.from(credentials.username, "utf8");
    const pass = await credentials.password();
    if (user.length > 255 || pass.length > 255) {
      throw new HandshakeError("the SOCKS5 username or password is longer than 255 bytes");
    }
    await write(socket, Buffer.concat([Buffer.from([0x01, user.length]), user, Buffer.from([pass.length]), pass]));
    const status = await readExactly(socket, 2);
    if (status[0] !== 0x01) {
      throw new HandshakeError(`invalid SOCKS5 username/password reply version ${status[0]}`);
    }
    if (status[1] !== 0x00) {
      throw new HandshakeError("SOCKS5 username/password was incorrect");
    }
  } else if (choice[1] !== 0x00) {
    throw new HandshakeError(`incompatible SOCKS5 authentication method ${choice[1]}`);
  }
  await write(socket, Buffer.concat([Buffer.from([0x05, 0x02, 0x00]), address(request.sourceIp, 0)]));
  const bound = await readReply(socket);
  if (bound !== 0x00) {
    throw new HandshakeError(`the proxy server failed to bind ${request.sourceIp}: ${replyText(bound)}`);
  }
  await write(
    socket,
    Buffer.concat([Buffer.from([0x05, 0x01, 0x00]), address(request.destinationIp, request.destinationPort)]),
  );
  const connected = await readReply(socket);
  if (connected !== 0x00) {
    throw new HandshakeError(
      `the proxy server failed to connect to ${request.destinationIp}:${request.destinationPort}: ${replyText(connected)}`,
    );
  }
}
