/**
 * Offline tests of sourceToJson: the suspend rules print as the other
 * clients print them (oneof case by name, durations as "300s"), and the
 * secrets are the fields the schema marks debug_redact, found here in the
 * descriptors on their own: each prints "[redacted]", never its value.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { create, ScalarType, type DescField, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { nestedTypes, reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import { poolToJson, REDACTED, sourceToJson } from "../src/client.js";
import { EgressPoolEntrySchema, EgressPoolSchema } from "../src/gen/kumo/egress/v1/egress_pool_pb.js";
import { redactedFields } from "../src/json.js";
import {
  EgressSourceSchema,
  file_kumo_egress_v1_egress_source,
  KeySourceSchema,
  SuspendOnFailureSchema,
  VaultKeySourceSchema,
  type EgressSource,
} from "../src/gen/kumo/egress/v1/egress_source_pb.js";

test("suspend rules print their trigger case and duration", () => {
  const source = create(EgressSourceSchema, {
    name: "suspending",
    suspendWhenUnplumbed: create(SuspendOnFailureSchema, {
      trigger: { case: "immediate", value: create(EmptySchema) },
      duration: { seconds: 300n },
    }),
    suspendWhenProxyUnhealthy: create(SuspendOnFailureSchema, {
      trigger: { case: "threshold", value: "local:1000/h,max_burst=5" },
      duration: { seconds: 1n, nanos: 500_000_000 },
    }),
  });
  assert.equal(
    JSON.stringify(sourceToJson(source)),
    '{"name":"suspending",' +
      '"suspend_when_unplumbed":{"immediate":{},"duration":"300s"},' +
      '"suspend_when_proxy_unhealthy":{"threshold":"local:1000/h,max_burst=5","duration":"1.500s"}}',
  );
});

test("a source without rules prints neither key", () => {
  const printed = sourceToJson(create(EgressSourceSchema, { name: "plain" }));
  assert.deepEqual(printed, { name: "plain" });
});

/** Every `debug_redact` field of the file that defines EgressSource, found by scanning its messages. */
function debugRedactFieldsOfTheFile(): Set<string> {
  const found = new Set<string>();
  for (const message of nestedTypes(file_kumo_egress_v1_egress_source)) {
    if (message.kind !== "message") {
      continue;
    }
    for (const field of message.fields) {
      if (field.proto.options?.debugRedact === true) {
        found.add(fullName(field));
      }
    }
  }
  return found;
}

/** Every path of singular fields from `schema` down to a string field. */
function stringPaths(schema: DescMessage, prefix: DescField[] = []): DescField[][] {
  const paths: DescField[][] = [];
  for (const field of schema.fields) {
    const path = [...prefix, field];
    if (field.fieldKind === "scalar" && field.scalar === ScalarType.STRING) {
      paths.push(path);
    } else if (field.fieldKind === "message" && !prefix.some((f) => f.parent === field.message)) {
      paths.push(...stringPaths(field.message, path));
    }
  }
  return paths;
}

/** A source whose field at the end of `path` is `value` (every message on the way set). */
function sourceWith(path: DescField[], value: string): EgressSource {
  const source = create(EgressSourceSchema, { name: "a" });
  let message = reflect(EgressSourceSchema, source);
  for (const field of path.slice(0, -1)) {
    if (field.fieldKind !== "message") {
      throw new Error(`${field.name} holds no message`);
    }
    const inner = reflect(field.message, create(field.message));
    message.set(field, inner);
    message = message.get(field) as ReflectMessage;
  }
  message.set(lastOf(path), value);
  return source;
}

function lastOf(path: DescField[]): DescField {
  const last = path[path.length - 1];
  assert.ok(last !== undefined, "an empty path");
  return last;
}

function fullName(field: DescField): string {
  return `${field.parent.typeName}.${field.name}`;
}

function at(printed: JsonValue, path: DescField[]): JsonValue {
  let value = printed;
  for (const field of path) {
    assert.ok(value !== null && typeof value === "object" && !Array.isArray(value), JSON.stringify(printed));
    const inner = value[field.name];
    assert.ok(inner !== undefined, `${field.name} is missing from ${JSON.stringify(printed)}`);
    value = inner;
  }
  return value;
}

test("the redacted fields are the schema's debug_redact fields", () => {
  const found = redactedFields(EgressSourceSchema);
  assert.deepEqual(found, debugRedactFieldsOfTheFile());
  assert.deepEqual(
    [...found].sort(),
    ["kumo.egress.v1.KeySource.key_data", "kumo.egress.v1.VaultKeySource.vault_token"],
  );
});

test("each string field prints its value unless the schema marks it debug_redact", () => {
  const secrets = debugRedactFieldsOfTheFile();
  const paths = stringPaths(EgressSourceSchema);
  const reached = new Set(paths.map((path) => fullName(lastOf(path))));
  for (const secret of secrets) {
    assert.ok(reached.has(secret), `${secret} is not reached from EgressSource`);
  }
  const sentinel = "sentinel-secret-value";
  for (const path of paths) {
    const printed = sourceToJson(sourceWith(path, sentinel));
    const where = path.map((field) => field.name).join(".");
    if (secrets.has(fullName(lastOf(path)))) {
      assert.equal(at(printed, path), REDACTED, where);
      assert.ok(!JSON.stringify(printed).includes(sentinel), where);
    } else {
      assert.equal(at(printed, path), sentinel, where);
    }
  }
});

test("an inline password and a Vault token print [redacted], never their value", () => {
  const inline = create(EgressSourceSchema, {
    name: "inline",
    socks5ProxyPassword: create(KeySourceSchema, { source: { case: "keyData", value: "hunter2" } }),
  });
  const vaulted = create(EgressSourceSchema, {
    name: "vaulted",
    socks5ProxyPassword: create(KeySourceSchema, {
      source: {
        case: "vault",
        value: create(VaultKeySourceSchema, { vaultToken: "s.vault-token", vaultMount: "kv", vaultPath: "mta/socks" }),
      },
    }),
  });
  assert.equal(
    JSON.stringify(sourceToJson(inline)),
    '{"name":"inline","socks5_proxy_password":{"key_data":"[redacted]"}}',
  );
  assert.equal(
    JSON.stringify(sourceToJson(vaulted)),
    '{"name":"vaulted","socks5_proxy_password":{"vault":' +
      '{"vault_token":"[redacted]","vault_mount":"kv","vault_path":"mta/socks"}}}',
  );
  assert.equal(inline.socks5ProxyPassword?.source.value, "hunter2"); // the caller's message is unchanged
});

test("a pool prints every entry's weight, even 0", () => {
  const pool = create(EgressPoolSchema, {
    name: "p",
    entries: [
      create(EgressPoolEntrySchema, { name: "a", weight: 0 }),
      create(EgressPoolEntrySchema, { name: "b", weight: 2 }),
    ],
    ttl: { seconds: 120n },
  });
  assert.equal(
    JSON.stringify(poolToJson(pool)),
    '{"name":"p","entries":[{"name":"a","weight":0},{"name":"b","weight":2}],"ttl":"120s"}',
  );
  assert.deepEqual(poolToJson(create(EgressPoolSchema, { name: "empty", ttl: { seconds: 60n } })), {
    name: "empty",
    entries: [],
    ttl: "60s",
  });
});
