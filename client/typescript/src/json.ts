/**
 * Definitions as protobuf JSON with the proto field names ("source_address",
 * "ttl": "90s", ...), with every secret replaced by "[redacted]"; pools with
 * every entry's weight, even 0.
 */
import { create, toJson, type JsonValue } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import type { ResolverError } from "./errors.js";
import type { EgressPool } from "./gen/kumo/egress/v1/egress_pool_pb.js";
import { EgressSourceSchema, type EgressSource } from "./gen/kumo/egress/v1/egress_source_pb.js";

/** What stands in for a secret in printed output. */
export const REDACTED = "[redacted]";

/** JSON keys whose values are secrets (KeySource.key_data, VaultKeySource.vault_token). */
const SECRET_KEYS: ReadonlySet<string> = new Set(["key_data", "vault_token"]);

/** The source as a JSON value: proto field names, unset optional fields omitted, secrets redacted. */
export function sourceToJson(source: EgressSource): JsonValue {
  return redact(toJson(EgressSourceSchema, source, { useProtoFieldName: true }));
}

/** The pool as `{name, entries: [{name, weight}], ttl}`: every weight (even 0), the ttl as protobuf JSON ("60s"). */
export function poolToJson(pool: EgressPool): JsonValue {
  return {
    name: pool.name,
    entries: pool.entries.map((entry) => ({ name: entry.name, weight: entry.weight })),
    ttl: toJson(DurationSchema, pool.ttl ?? create(DurationSchema)),
  };
}

/** The error as `{code, reason, message}`: the gRPC code name, the ErrorInfo reason ("" if none). */
export function errorToJson(error: ResolverError): JsonValue {
  return { code: error.code, reason: error.reason ?? "", message: error.message };
}

/** A copy of `value` in which every secret key's value is REDACTED. */
function redact(value: JsonValue): JsonValue {
  if (Array.isArray(value)) {
    return value.map(redact);
  }
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, inner]) => [key, SECRET_KEYS.has(key) ? REDACTED : redact(inner)]),
    );
  }
  return value;
}
