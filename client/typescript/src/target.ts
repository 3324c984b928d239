/**
 * Turns a gRPC-style target ("127.0.0.1:50051", "[::1]:50051",
 * "unix:/abs/path", "unix:///abs/path") into the base URL and HTTP/2 session
 * options of a Connect gRPC transport.
 */
import { connect as netConnect } from "node:net";
import type { ClientSessionOptions } from "node:http2";

/** Where the transport sends its requests and how it opens its socket. */
export interface TransportTarget {
  /** The http:// URL the requests go to (its authority is sent as :authority). */
  readonly baseUrl: string;
  /** Options for `http2.connect()`; they open a unix socket when the target is one. */
  readonly sessionOptions: ClientSessionOptions;
}

const UNIX_PREFIX = "unix:";

/** Parses `target`; throws a TypeError when it is not one of the accepted forms. */
export function parseTarget(target: string): TransportTarget {
  if (target.startsWith(UNIX_PREFIX)) {
    const path = target.slice(UNIX_PREFIX.length).replace(/^\/\/(?=\/)/, "");
    if (!path.startsWith("/")) {
      throw new TypeError(`unix target needs an absolute path: ${JSON.stringify(target)}`);
    }
    return {
      baseUrl: "http://localhost",
      sessionOptions: { createConnection: () => netConnect(path) },
    };
  }
  if (/^https?:\/\//.test(target)) {
    return { baseUrl: target, sessionOptions: {} };
  }
  if (!/^(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):\d{1,5}$/.test(target)) {
    throw new TypeError(`target must be HOST:PORT, [V6]:PORT or unix:/PATH: ${JSON.stringify(target)}`);
  }
  return { baseUrl: `http://${target}`, sessionOptions: {} };
}
