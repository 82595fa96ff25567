// [patch:batch-ws-frames] WebSocket frames handed to the event bus in batches (added by the build).
// Every hook event sends frames (new_event, session_updated, agent_updated), 100+ per second with
// 22 agents, each its own browser task: a page that sets React state per frame renders and lays
// out once per frame. publishInBatches(bus, msg) queues the frame and publishes the queue, in
// order, in ONE task: at once (next task) when idle, else FLUSH_INTERVAL_MS after the last flush,
// so React batches the state updates of a whole batch into one render. Nothing is dropped or
// reordered; a throwing subscriber does not stop the rest of the batch (its error is rethrown in
// a task of its own, so it still reaches the console and the page's error handlers).

export const FLUSH_INTERVAL_MS = 250;

interface Bus<M> {
  publish(msg: M): void;
}

const queue: Array<[Bus<unknown>, unknown]> = [];
let timer: ReturnType<typeof setTimeout> | null = null;
let lastFlush = -Infinity;

function flush(): void {
  timer = null;
  lastFlush = Date.now();
  for (const [bus, msg] of queue.splice(0)) {
    try {
      bus.publish(msg);
    } catch (err) {
      setTimeout(() => {
        throw err;
      }, 0);
    }
  }
}

/** Publish `msg` on `bus` with the other frames of its batch (see above). */
export function publishInBatches<M>(bus: Bus<M>, msg: M): void {
  queue.push([bus as Bus<unknown>, msg]);
  if (timer !== null) return;
  // Clamped: a wall clock set back must not hold frames for longer than one interval.
  timer = setTimeout(flush, Math.min(FLUSH_INTERVAL_MS, Math.max(0, lastFlush + FLUSH_INTERVAL_MS - Date.now())));
}
