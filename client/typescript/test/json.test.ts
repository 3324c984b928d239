/**
 * Offline tests of sourceToJson: the suspend rules print as the other
 * clients print them (oneof case by name, durations as "300s").
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { EmptySchema } from "@bufbuild/protobuf/wkt";
import { sourceToJson } from "../src/client.js";
import { EgressSourceSchema, SuspendOnFailureSchema } from "../src/gen/kumo/egress/v1/egress_source_pb.js";

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
