/**
 * Definitions as protobuf JSON with the proto field names ("source_address",
 * "ttl": "90s", ...), with the value of every field the schema marks
 * `[debug_redact = true]` replaced by "[redacted]"; pools with every entry's
 * weight, even 0. Which fields are secrets is read from the descriptors the
 * generated code embeds, so a secret added to the schema needs no change here.
 */
import { toJson, type DescField, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import type { ResolverError } from "./errors.js";
import { EgressPoolSchema, type EgressPool } from "./gen/kumo/egress/v1/egress_pool_pb.js";
import { EgressSourceSchema, type EgressSource } from "./gen/kumo/egress/v1/egress_source_pb.js";

/** What stands in for a secret in printed output. */
export const REDACTED = "[redacted]";

/** The source as a JSON value: proto field names, unset optional fields omitted, secrets redacted. */
export function sourceToJson(source: EgressSource): JsonValue {
  return redactJson(EgressSourceSchema, toJson(EgressSourceSchema, source, { useProtoFieldName: true }));
}

/** True when the schema marks `field` with `debug_redact = true`. */
export function isRedacted(field: DescField): boolean {
  return field.proto.options?.debugRedact === true;
}

/** The full names ("pkg.Message.field") of the `debug_redact` fields of `schema` and of every message it holds. */
export function redactedFields(schema: DescMessage): ReadonlySet<string> {
  const found = new Set<string>();
  const seen = new Set<string>();
  const visit = (message: DescMessage): void => {
    if (seen.has(message.typeName)) {
      return;
    }
    seen.add(message.typeName);
    for (const field of message.fields) {
      if (isRedacted(field)) {
        found.add(`${message.typeName}.${field.name}`);
      } else {
        const inner = heldMessage(field);
        if (inner !== undefined) {
          visit(inner);
        }
      }
    }
  };
  visit(schema);
  return found;
}

/**
 * A copy of `json` (`toJson` of a `schema` message with proto field names) in
 * which the value of every `debug_redact` field, at any depth, is REDACTED.
 */
export function redactJson(schema: DescMessage, json: JsonValue): JsonValue {
  if (json === null || typeof json !== "object" || Array.isArray(json)) {
    return json; // a well-known type printed as a scalar, e.g. a Duration "90s"
  }
  return Object.fromEntries(
    Object.entries(json).map(([key, value]) => {
      const field = schema.fields.find((candidate) => candidate.name === key);
      if (field === undefined) {
        return [key, REDACTED]; // not a field of the message: print nothing of it
      }
      return [key, isRedacted(field) ? REDACTED : redactValue(field, value)];
    }),
  );
}

function redactValue(field: DescField, value: JsonValue): JsonValue {
  const inner = heldMessage(field);
  if (inner === undefined || value === null || typeof value !== "object") {
    return value;
  }
  if (Array.isArray(value)) {
    return value.map((item) => redactJson(inner, item));
  }
  if (field.fieldKind === "map") {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, redactJson(inner, item)]));
  }
  return redactJson(inner, value);
}

/** The message type `field` holds (singular, list element or map value), if any. */
function heldMessage(field: DescField): DescMessage | undefined {
  switch (field.fieldKind) {
    case "message":
      return field.message;
    case "list":
      return field.listKind === "message" ? field.message : undefined;
    case "map":
      return field.mapKind === "message" ? field.message : undefined;
    default:
      return undefined;
  }
}

/** The pool as protobuf JSON with the proto field names and every entry's weight, even 0. */
export function poolToJson(pool: EgressPool): JsonValue {
  const json = toJson(EgressPoolSchema, pool, { useProtoFieldName: true, alwaysEmitImplicit: true });
  return redactJson(EgressPoolSchema, json);
}

/** The error as `{code, reason, message}`: the gRPC code name, the ErrorInfo reason ("" if none). */
export function errorToJson(error: ResolverError): JsonValue {
  return { code: error.code, reason: error.reason ?? "", message: error.message };
}
