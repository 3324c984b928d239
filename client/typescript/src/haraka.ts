/**
 * The Haraka plugin's logic (haraka/egress/index.js is the CommonJS plugin
 * Haraka loads; it imports this module with a dynamic `import()`).
 *
 * - `data_post`: a message's `X-Egress-Pool` header names its pool (the
 *   header is removed); else the pool of egress.ini is used.
 * - `get_mx`: selects a source of the pool (suspended sources skipped, as
 *   `select` does) and answers the MX list with `bind` = `source_address`,
 *   `bind_helo` = `ehlo_domain` (or the host name) and the port from
 *   `remote_port`. The destination is egress.ini's `relay` host:port, or the
 *   domain's MX records. A source with a proxy is refused: Haraka cannot
 *   connect through one, so the message is deferred, not sent directly.
 * - `deferred` / `bounce`: when the source's address cannot be bound on
 *   this host (EADDRNOTAVAIL), the failure is reported as SOURCE_UNPLUMBED,
 *   so that the sidecar's suspend_when_unplumbed rule applies to Haraka too.
 */
import { resolveMx } from "node:dns/promises";
import { createServer } from "node:net";
import { hostname } from "node:os";
import { createResolver, ResolverError, type EgressSource, type Resolver } from "./client.js";
import { splitHostPort } from "./address.js";

/** What the plugin reads from egress.ini's [main] section. */
export interface PluginSettings {
  /** The sidecar ("" for EGRESS_CLIENT_TARGET or the default). */
  readonly target: string;
  /** The pool of messages without an X-Egress-Pool header ("": such messages are not routed). */
  readonly pool: string;
  /** "HOST:PORT" every message goes to instead of the domain's MX ("": MX lookup). */
  readonly relay: string;
  /** Cache the sidecar's answers and follow its invalidation stream. */
  readonly cache: boolean;
}

/** Haraka's logging, bound to the plugin. */
export interface PluginLog {
  info(message: string, subject?: unknown): void;
  error(message: string, subject?: unknown): void;
}

/** One MX as Haraka's get_mx hook answers it. */
export interface HarakaMx {
  readonly exchange: string;
  readonly priority: number;
  readonly port: number;
  readonly bind?: string;
  readonly bind_helo: string;
}

/** The answer of a hook: a Haraka return code by name, and its value. */
export type HookAnswer =
  | { readonly code: "OK"; readonly mx: HarakaMx[] }
  | { readonly code: "DENY" | "DENYSOFT"; readonly message: string }
  | { readonly code: "CONT" };

/** The notes the plugin keeps on a message (they go with it into Haraka's queue). */
export interface EgressNotes {
  egress_pool?: string;
  egress?: { readonly pool: string; readonly source: string; readonly bind: string; readonly domain: string };
}

/** The header that names a message's pool. */
export const POOL_HEADER = "X-Egress-Pool";

/** The proxy fields a source has set, if any ("ha_proxy_server 10.0.0.9:5000"). */
function proxyOf(source: EgressSource): string | undefined {
  if (source.haProxyServer || source.haProxySourceAddress) {
    return `ha_proxy_server ${source.haProxyServer || "(unset)"}`;
  }
  if (source.socks5ProxyServer || source.socks5ProxySourceAddress) {
    return `socks5_proxy_server ${source.socks5ProxyServer || "(unset)"}`;
  }
  return undefined;
}

/** The MX hosts of `domain`, by preference; the domain itself when it has none (RFC 5321 implicit MX). */
async function mxHosts(domain: string): Promise<{ exchange: string; priority: number }[]> {
  try {
    const records = await resolveMx(domain);
    return records.sort((a, b) => a.priority - b.priority).map((r) => ({ exchange: r.exchange, priority: r.priority }));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENODATA") {
      return [{ exchange: domain, priority: 0 }];
    }
    throw error;
  }
}

/** Whether `address` can be bound here: the bind's error code, or undefined when it can. */
function bindProbe(address: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "EINVAL"));
    probe.listen(0, address, () => probe.close(() => resolve(undefined)));
  });
}

/** The plugin's state in one Haraka process: one resolver (one round robin per pool). */
export class EgressPlugin {
  readonly resolver: Resolver;

  constructor(
    private readonly settings: PluginSettings,
    private readonly log: PluginLog,
  ) {
    this.resolver = createResolver({
      ...(settings.target ? { target: settings.target } : {}),
      cache: settings.cache,
    });
  }

  /** data_post: the pool named by the message's header, kept in its notes. */
  dataPost(header: string | undefined, notes: EgressNotes): void {
    const pool = header?.trim();
    if (pool) {
      notes.egress_pool = pool;
    }
  }

  /** get_mx: the MX list bound to a source of the message's pool. */
  async getMx(domain: string, notes: EgressNotes, subject?: unknown): Promise<HookAnswer> {
    const pool = notes.egress_pool || this.settings.pool;
    if (!pool) {
      return { code: "CONT" };
    }
    let source: EgressSource;
    try {
      source = await this.resolver.get(await this.resolver.select(pool));
    } catch (error) {
      const why = error instanceof ResolverError ? error.describe() : String(error);
      this.log.error(`egress: no source from pool ${pool}: ${why}; the message is deferred`, subject);
      return { code: "DENYSOFT", message: `egress pool ${pool}: ${why}` };
    }
    const proxy = proxyOf(source);
    if (proxy !== undefined) {
      const message =
        `egress: source ${source.name} of pool ${pool} connects through a proxy (${proxy}), which Haraka cannot do; ` +
        "the message is deferred, not sent directly";
      this.log.error(message, subject);
      return { code: "DENYSOFT", message };
    }
    let hosts: { exchange: string; priority: number; port?: number }[];
    if (this.settings.relay) {
      const { host, port } = splitHostPort(this.settings.relay);
      hosts = [{ exchange: host, priority: 0, port }];
    } else {
      try {
        hosts = await mxHosts(domain);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        const message = `egress: MX lookup of ${domain} failed: ${code ?? String(error)}`;
        return code === "ENOTFOUND" ? { code: "DENY", message } : { code: "DENYSOFT", message };
      }
    }
    const bindHelo = source.ehloDomain || hostname();
    const mx = hosts.map((host) => ({
      exchange: host.exchange,
      priority: host.priority,
      port: source.remotePort || host.port || 25,
      ...(source.sourceAddress ? { bind: source.sourceAddress } : {}),
      bind_helo: bindHelo,
    }));
    notes.egress = { pool, source: source.name, bind: source.sourceAddress ?? "", domain };
    this.log.info(`egress: ${domain} via source ${source.name} of pool ${pool} (bind ${source.sourceAddress || "-"}, helo ${bindHelo})`, subject);
    return { code: "OK", mx };
  }

  /** deferred / bounce: reports SOURCE_UNPLUMBED when the source's address cannot be bound here. */
  async failed(notes: EgressNotes, why: string, subject?: unknown): Promise<void> {
    const used = notes.egress;
    if (used === undefined || !used.bind) {
      return;
    }
    const code = await bindProbe(used.bind);
    if (code !== "EADDRNOTAVAIL") {
      return; // the source's address is on this host: the destination failed, not the source
    }
    const message = `source ${used.source}: bind ${used.bind}:0: cannot assign requested address (EADDRNOTAVAIL); delivery to ${used.domain}: ${why}`;
    try {
      const suspension = await this.resolver.reportFailure(used.source, "SOURCE_UNPLUMBED", used.bind, message);
      const state = suspension === undefined ? "not suspended" : `suspended until ${new Date(suspension.untilMs).toISOString()}`;
      this.log.error(`egress: reported ${message}; ${used.source} is ${state}`, subject);
    } catch (error) {
      this.log.error(`egress: reporting ${used.source} failed: ${String(error)}`, subject);
    }
  }

  /** Closes the resolver. */
  close(): Promise<void> {
    return this.resolver.close();
  }
}
