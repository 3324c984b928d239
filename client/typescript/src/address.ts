/**
 * Addresses for `connect`: HOST:PORT parsing, name resolution within the
 * attempt's deadline, and errno codes as words (`connection refused
 * (ECONNREFUSED)`) for the messages.
 */
import { lookup } from "node:dns/promises";
import { isIP } from "node:net";

/** One host:port. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** "HOST:PORT", "[V6]:PORT" or "V6:PORT" (the last colon separates the port). */
export function splitHostPort(text: string): HostPort {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  const at = text.lastIndexOf(":");
  const host = bracketed ? bracketed[1] : text.slice(0, at);
  const portText = bracketed ? bracketed[2] : text.slice(at + 1);
  const port = Number(portText);
  if (at < 0 || !host || !/^\d+$/.test(portText ?? "") || port < 1 || port > 65535) {
    throw new RangeError(`${JSON.stringify(text)} is not HOST:PORT`);
  }
  return { host: host as string, port };
}

/** `IP:port`, bracketed for IPv6. */
export function joinHostPort(ip: string, port: number): string {
  return isIP(ip) === 6 ? `[${ip}]:${port}` : `${ip}:${port}`;
}

const ERRNO_TEXT: Readonly<Record<string, string>> = {
  EADDRNOTAVAIL: "cannot assign requested address",
  EADDRINUSE: "address already in use",
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EINVAL: "invalid argument",
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset by peer",
  EHOSTUNREACH: "no route to host",
  ENETUNREACH: "network is unreachable",
  ETIMEDOUT: "connection timed out",
  EPIPE: "broken pipe",
};

/** `connection refused (ECONNREFUSED)`, or the error's own message. */
export function cause(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === "string" && ERRNO_TEXT[code] !== undefined) {
    return `${ERRNO_TEXT[code]} (${code})`;
  }
  return error instanceof Error ? error.message : String(error);
}

/** Milliseconds left before `deadline` (performance.now() milliseconds). */
export function left(deadline: number): number {
  return deadline - performance.now();
}

/** `promise`, or a rejection "deadline passed <what>" when the deadline passes first. */
export function before<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`deadline passed ${what}`)), Math.max(0, left(deadline)));
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/** Every address of `host` (an IP literal is itself), resolved within the deadline. */
export async function addresses(host: string, deadline: number, what: string): Promise<string[]> {
  if (isIP(host)) {
    return [host];
  }
  const found = await before(lookup(host, { all: true, verbatim: true }), deadline, `resolving ${what}`);
  return found.map((entry) => entry.address);
}

export const sameFamily = (a: string, b: string) => isIP(a) === isIP(b);
