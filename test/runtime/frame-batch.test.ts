// The client's frame batcher (patches/runtime/client/frame-batch.ts): frames of a burst reach the
// bus in one task, in order, none dropped; at most one batch per interval under a steady stream;
// the first frame after a quiet spell goes out at once; a throwing subscriber does not stop the rest.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FLUSH_INTERVAL_MS } from "../../patches/runtime/client/frame-batch.ts";

// The batcher keeps its queue and last flush time in the module, as in the page: a fresh copy per
// test, made under that test's fake clock.
let publishInBatches: typeof import("../../patches/runtime/client/frame-batch.ts").publishInBatches;
beforeEach(async () => {
  vi.useFakeTimers();
  vi.resetModules();
  ({ publishInBatches } = await import("../../patches/runtime/client/frame-batch.ts"));
});
afterEach(() => vi.useRealTimers());

/** A bus that records each publish with the index of the flush (task) it came in. */
function recordingBus() {
  const seen: number[] = [];
  const tasks: number[][] = [];
  let current: number[] | null = null;
  return {
    seen,
    tasks,
    publish(n: number) {
      if (!current) {
        tasks.push((current = []));
        queueMicrotask(() => (current = null)); // the end of this task
      }
      current.push(n);
      seen.push(n);
    },
  };
}

describe("publishInBatches(bus, msg)", () => {
  it("delivers every frame in order, a burst in one task, ≤ 1 batch per interval while frames keep coming", async () => {
    const bus = recordingBus();
    let n = 0;
    for (let t = 0; t < 2000; t += 10) {
      publishInBatches(bus, n++); // 100 frames per second for 2 s
      publishInBatches(bus, n++);
      await vi.advanceTimersByTimeAsync(10);
    }
    await vi.advanceTimersByTimeAsync(2 * FLUSH_INTERVAL_MS);
    expect(bus.seen).toEqual([...Array(n).keys()]);
    expect(bus.tasks.length).toBeGreaterThanOrEqual(2000 / FLUSH_INTERVAL_MS);
    expect(bus.tasks.length).toBeLessThanOrEqual(2000 / FLUSH_INTERVAL_MS + 2);
  });

  it("sends the first frame after a quiet spell at once (next task), not after the interval", async () => {
    const bus = recordingBus();
    await vi.advanceTimersByTimeAsync(5 * FLUSH_INTERVAL_MS);
    publishInBatches(bus, 1);
    expect(bus.seen).toEqual([]); // not synchronously: frames of the same burst join it
    await vi.advanceTimersByTimeAsync(1);
    expect(bus.seen).toEqual([1]);
  });

  it("keeps going after a throwing subscriber, and rethrows its error in a task of its own", async () => {
    const seen: number[] = [];
    const bus = {
      publish(n: number) {
        if (n === 2) throw new Error("subscriber failed");
        seen.push(n);
      },
    };
    await vi.advanceTimersByTimeAsync(5 * FLUSH_INTERVAL_MS);
    publishInBatches(bus, 1);
    publishInBatches(bus, 2);
    publishInBatches(bus, 3);
    await vi.advanceTimersToNextTimerAsync(); // the flush
    expect(seen).toEqual([1, 3]);
    await expect(vi.advanceTimersToNextTimerAsync()).rejects.toThrow("subscriber failed");
  });
});
