/**
 * The suspensions a client knows: added from the sidecar's answers and
 * stream, replaced by a hello, removed when resumed, forgotten at `until`.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  FailureClass,
  SourceSuspensionSchema,
  WatchInvalidationsResponseSchema,
  type SourceSuspension,
} from "../src/gen/kumo/egress/v1/resolver_service_pb.js";
import { DefinitionCache } from "../src/cache.js";
import { Coherence } from "../src/coherence.js";
import { describeUntil, Suspensions } from "../src/health.js";
import { applyEvent } from "../src/watch.js";
import { FakeClock } from "./helpers.js";

const NOW = Date.UTC(2026, 11, 3, 18, 39, 31);

function suspension(name: string, untilMs: number, failureClass = FailureClass.SOURCE_UNPLUMBED): SourceSuspension {
  return create(SourceSuspensionSchema, { name, failureClass, until: timestampFromMs(untilMs), reason: `${name} failed` });
}

test("describeUntil: the UTC second and how far, rounded up", () => {
  assert.equal(describeUntil(NOW + 29_000, NOW + 500), "2026-12-03T18:40:00Z (in 29s)");
  assert.equal(describeUntil(NOW, NOW + 1), "2026-12-03T18:39:31Z (in 0s)");
});

test("added, listed by name, forgotten at until on the client's clock", () => {
  const clock = new FakeClock(NOW);
  const store = new Suspensions(clock.read);
  store.add([suspension("ip-3", NOW + 2000), suspension("ip-1", NOW + 1000, FailureClass.PROXY_UNHEALTHY)]);
  store.add([suspension("old", NOW - 1)]);
  assert.deepEqual(
    store.list().map((s) => [s.name, s.failureClass, s.untilMs]),
    [
      ["ip-1", "PROXY_UNHEALTHY", NOW + 1000],
      ["ip-3", "SOURCE_UNPLUMBED", NOW + 2000],
    ],
  );
  assert.equal(store.firstToResume(["ip-3", "ip-1"])?.name, "ip-1");
  assert.equal(store.firstToResume(["ip-3", "ok"]), undefined);
  clock.advance(1000);
  assert.ok(!store.has("ip-1"));
  assert.ok(store.has("ip-3"));
  clock.advance(1000);
  assert.deepEqual(store.list(), []);
});

test("the stream: the hello replaces, later messages add and resume; when first known is kept", () => {
  const clock = new FakeClock(NOW);
  const store = new Suspensions(clock.read);
  const settings = { maxEntries: 10, clock: clock.read, wallClock: clock.read, staleIfErrorMs: 0 };
  const state = new Coherence(new DefinitionCache(settings), new DefinitionCache(settings));
  const event = (fields: Parameters<typeof create<typeof WatchInvalidationsResponseSchema>>[1]) =>
    create(WatchInvalidationsResponseSchema, fields);
  store.add([suspension("gone", NOW + 5000), suspension("kept", NOW + 5000)]);
  const since = store.knownSince("kept");
  let woken = 0;
  store.subscribe(() => (woken += 1));
  applyEvent(state, event({ revision: "r1", suspended: [suspension("kept", NOW + 6000)] }), true, store);
  assert.deepEqual(store.list().map((s) => s.name), ["kept"]);
  assert.equal(store.knownSince("kept"), since);
  applyEvent(state, event({ sequence: 1n, suspended: [suspension("new", NOW + 5000)] }), false, store);
  applyEvent(state, event({ sequence: 2n, resumed: ["kept"] }), false, store);
  assert.deepEqual(store.list().map((s) => s.name), ["new"]);
  assert.equal(woken, 2);
});
