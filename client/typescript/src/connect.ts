/**
 * Connecting through an egress source as kumod's `EgressSource::connect_to`
 * does (docs/clients/connect.md): `remote_port`, the transport (HAProxy,
 * SOCKS5 or direct), the candidates (a proxy host name resolved now, every
 * address tried in turn, those of the other family than `source_address`
 * left out), the bind of `source_address` before each connect, the proxy
 * handshake, one deadline for all of it, and the failure classes.
 * A PROXY_UNHEALTHY found before any connection attempt (an address family
 * that does not match, a proxy name that does not resolve, no candidate left,
 * a unix-path proxy) is not reportable: kumod does not record those.
 */
import { readFile } from "node:fs/promises";
import { isIP, Socket } from "node:net";
import { hostname } from "node:os";
import type { EgressSource, KeySource } from "./gen/kumo/egress/v1/egress_source_pb.js";
import { addresses, cause, joinHostPort, left, sameFamily, splitHostPort, type HostPort } from "./address.js";
import type { FailureClassName } from "./health.js";
import { HandshakeError, proxyV2Header, socks5Handshake } from "./proxy.js";

/** A connected stream, ready for SMTP (the next byte is the banner), and the name to say in EHLO. */
export interface Connection {
  readonly socket: Socket;
  readonly ehlo: string;
}

/** A classified failure of `connect`. */
export class ConnectFailure extends Error {
  override readonly name = "ConnectFailure";

  constructor(
    readonly failureClass: FailureClassName,
    /** The address that failed: the source address, or the proxy's `IP:port`. */
    readonly address: string,
    message: string,
    /**
     * Whether the client reports it: SOURCE_UNPLUMBED for EADDRNOTAVAIL, and
     * PROXY_UNHEALTHY found while connecting to or talking with the proxy (not
     * one found before any connection attempt, which kumod does not record).
     */
    readonly reportable: boolean,
  ) {
    super(message);
  }
}

/** The transport of a source: HAProxy, SOCKS5 or direct. */
type Transport =
  | { readonly kind: "haproxy"; readonly server: string; readonly proxySource: string }
  | { readonly kind: "socks5"; readonly server: string; readonly proxySource: string }
  | { readonly kind: "direct" };

function transportOf(source: EgressSource): Transport {
  if (source.haProxyServer && source.haProxySourceAddress) {
    return { kind: "haproxy", server: source.haProxyServer, proxySource: source.haProxySourceAddress };
  }
  if (source.socks5ProxyServer && source.socks5ProxySourceAddress) {
    return { kind: "socks5", server: source.socks5ProxyServer, proxySource: source.socks5ProxySourceAddress };
  }
  return { kind: "direct" };
}


/** The password of a KeySource: `key_data`, or the file read now; a vault KeySource is refused. */
async function password(key: KeySource): Promise<Buffer> {
  switch (key.source.case) {
    case "keyData":
      return Buffer.from(key.source.value, "utf8");
    case "file":
      return readFile(key.source.value);
    case "vault":
      throw new HandshakeError("vault KeySource is not supported by the egress-resolver clients; use key_data or a file");
    default:
      throw new HandshakeError("socks5_proxy_password has no key_data and no file");
  }
}

/** Why one candidate failed. */
interface Attempt {
  /** bind: binding source_address; proxy: reaching or talking to the proxy; connect: the destination, directly. */
  readonly kind: "bind" | "proxy" | "connect";
  readonly address: string;
  readonly code: string | undefined;
  readonly text: string;
}

/** One candidate: what to connect to, and what to say first. */
interface Candidate {
  readonly ip: string;
  readonly port: number;
  readonly proxy: boolean;
  readonly handshake: (socket: Socket) => Promise<void>;
}

/** Opens one TCP connection (source_address bound first) and runs the handshake; rejects with an Attempt. */
function attempt(candidate: Candidate, sourceAddress: string | undefined, deadline: number): Promise<Socket> {
  const address = joinHostPort(candidate.ip, candidate.port);
  const socket = new Socket();
  let connected = false;
  return new Promise<Socket>((resolve, reject) => {
    const fail = (error: unknown, timedOut = false) => {
      clearTimeout(timer);
      socket.destroy();
      const syscall = (error as NodeJS.ErrnoException).syscall;
      const code = (error as NodeJS.ErrnoException).code;
      if (syscall === "bind") {
        const bound = sourceAddress ?? "";
        const text = `bind ${joinHostPort(bound, 0)}: ${cause(error)}`;
        reject({ kind: "bind", address: bound, code, text } satisfies Attempt);
        return;
      }
      const stage = timedOut
        ? `deadline passed while ${connected ? "performing the proxy handshake" : "connecting"}`
        : cause(error);
      const text = candidate.proxy ? `proxy ${address}: ${stage}` : `connect ${address}: ${stage}`;
      reject({ kind: candidate.proxy ? "proxy" : "connect", address, code, text } satisfies Attempt);
    };
    const timer = setTimeout(() => fail(new Error("deadline"), true), Math.max(0, left(deadline)));
    socket.once("error", fail);
    socket.once("connect", () => {
      connected = true;
      candidate.handshake(socket).then(() => {
        clearTimeout(timer);
        socket.off("error", fail);
        resolve(socket);
      }, fail);
    });
    socket.connect({
      host: candidate.ip,
      port: candidate.port,
      family: isIP(candidate.ip),
      noDelay: true,
      ...(sourceAddress ? { localAddress: sourceAddress } : {}),
    });
  });
}

/** The candidates of `transport` for the destination addresses, or a ConnectFailure. */
async function candidates(
  source: EgressSource,
  transport: Transport,
  destinations: readonly string[],
  port: number,
  deadline: number,
): Promise<Candidate[]> {
  const named = `source ${source.name}`;
  if (transport.kind === "direct") {
    const kept = destinations.filter((ip) => !source.sourceAddress || sameFamily(ip, source.sourceAddress));
    if (kept.length === 0) {
      const why = `no address of the destination (${destinations.join(", ")}) matches source_address ${source.sourceAddress} family`;
      throw new ConnectFailure("CONNECT_FAILED", destinations.join(","), `${named}: ${why}`, false);
    }
    return kept.map((ip) => ({ ip, port, proxy: false, handshake: async () => {} }));
  }
  const field = transport.kind === "haproxy" ? "ha_proxy_server" : "socks5_proxy_server";
  // Found before any connection attempt: kumod returns from
  // resolve_proxy_protocols before maybe_record_health_failure, so these are
  // not reported (one odd destination would suspend the source host-wide).
  const unhealthy = (why: string) => new ConnectFailure("PROXY_UNHEALTHY", transport.server, `${named}: ${why}`, false);
  const matching = destinations.filter((ip) => sameFamily(ip, transport.proxySource));
  if (matching.length === 0) {
    const sourceField = transport.kind === "haproxy" ? "ha_proxy_source_address" : "socks5_proxy_source_address";
    throw unhealthy(
      `${sourceField} ${transport.proxySource} address family does not match the destination address family ${destinations.join(", ")}`,
    );
  }
  let server: HostPort;
  try {
    server = splitHostPort(transport.server);
  } catch {
    throw unhealthy(`${field} ${transport.server} is not HOST:PORT (a unix-path proxy cannot be used)`);
  }
  let resolved: string[];
  try {
    resolved = await addresses(server.host, deadline, `${field} ${transport.server}`);
  } catch (error) {
    throw unhealthy(`${field} ${transport.server}: ${cause(error)}`);
  }
  const proxies = resolved.filter((ip) => !source.sourceAddress || sameFamily(ip, source.sourceAddress));
  if (proxies.length === 0) {
    throw unhealthy(
      `no ${field} candidates remain after filtering ${resolved.length} resolved address(es) to match source_address ${source.sourceAddress} family`,
    );
  }
  const list: Candidate[] = [];
  for (const destination of matching) {
    for (const ip of proxies) {
      const handshake =
        transport.kind === "haproxy"
          ? (socket: Socket) => write(socket, proxyV2Header(transport.proxySource, destination, port))
          : (socket: Socket) =>
              socks5Handshake(socket, {
                sourceIp: transport.proxySource,
                destinationIp: destination,
                destinationPort: port,
                ...(source.socks5ProxyUsername && source.socks5ProxyPassword
                  ? {
                      credentials: {
                        username: source.socks5ProxyUsername,
                        password: () => password(source.socks5ProxyPassword as KeySource),
                      },
                    }
                  : {}),
              });
      list.push({ ip, port: server.port, proxy: true, handshake });
    }
  }
  return list;
}

function write(socket: Socket, bytes: Buffer): Promise<void> {
  return new Promise((resolve, reject) => socket.write(bytes, (error) => (error ? reject(error) : resolve())));
}

/** kumod's classification of the candidates' failures. */
function classify(source: EgressSource, attempts: readonly Attempt[], skipped: string): ConnectFailure {
  const message = `source ${source.name}: ${[...attempts.map((a) => a.text), ...(skipped ? [skipped] : [])].join("; ")}`;
  const first = attempts[0];
  if (first !== undefined && attempts.every((a) => a.kind === "bind")) {
    return new ConnectFailure("SOURCE_UNPLUMBED", first.address, message, first.code === "EADDRNOTAVAIL");
  }
  const proxy = attempts.find((a) => a.kind === "proxy");
  if (proxy !== undefined) {
    return new ConnectFailure("PROXY_UNHEALTHY", proxy.address, message, true);
  }
  return new ConnectFailure("CONNECT_FAILED", first?.address ?? "", message, false);
}

/**
 * Connects to `to` ("HOST:PORT") through `source` before `deadline`
 * (performance.now() milliseconds); rejects with a ConnectFailure.
 */
export async function connectThrough(source: EgressSource, to: string, deadline: number): Promise<Connection> {
  const destination = splitHostPort(to);
  const port = source.remotePort || destination.port;
  const transport = transportOf(source);
  let destinations: string[];
  try {
    destinations = await addresses(destination.host, deadline, `the destination ${destination.host}`);
  } catch (error) {
    const text = `source ${source.name}: resolving ${destination.host}: ${cause(error)}`;
    throw new ConnectFailure("CONNECT_FAILED", destination.host, text, false);
  }
  const list = await candidates(source, transport, destinations, port, deadline);
  const attempts: Attempt[] = [];
  const unbindable = new Set<number>();
  let skipped = "";
  for (const candidate of list) {
    if (unbindable.has(isIP(candidate.ip))) {
      continue; // binding source_address failed for this family: it would fail the same way
    }
    if (left(deadline) <= 0) {
      skipped = `deadline passed before ${joinHostPort(candidate.ip, candidate.port)} was tried`;
      break;
    }
    try {
      const socket = await attempt(candidate, source.sourceAddress, deadline);
      return { socket, ehlo: source.ehloDomain || hostname() };
    } catch (failure) {
      const failed = failure as Attempt;
      attempts.push(failed);
      if (failed.kind === "bind") {
        unbindable.add(isIP(candidate.ip));
      }
    }
  }
  throw classify(source, attempts, skipped);
}
