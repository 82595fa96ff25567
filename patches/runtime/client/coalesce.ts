// [patch:coalesce-page-reloads] Coalesced reloads for WebSocket-driven pages (added by the build).
// Every hook event broadcasts a frame; a page that reloads its list on each frame floods the
// server. coalesced(key, fn): the first call runs fn at once (leading), calls while it runs or
// within MIN_INTERVAL_MS of its start are folded into ONE trailing run after both have passed, so
// a steady stream gives one request per interval and the last frame is always followed by a reload
// (never a trailing-only debounce, which starves under a steady stream). One request in flight per key.
// The latest fn for a key is the one that runs (React recreates loaders when their deps change).

export const MIN_INTERVAL_MS = 1000;

interface Slot {
  fn: () => unknown;
  inFlight: boolean;
  pending: boolean;
  lastStart: number;
  timer: ReturnType<typeof setTimeout> | null;
}

const slots = new Map<string, Slot>();

function run(slot: Slot): void {
  slot.pending = false;
  slot.inFlight = true;
  slot.lastStart = Date.now();
  let done: Promise<unknown>;
  try {
    done = Promise.resolve(slot.fn());
  } catch (err) {
    done = Promise.reject(err);
  }
  done
    .catch(() => undefined) // the loader reports its own errors; a failure must not stop later reloads
    .finally(() => {
      slot.inFlight = false;
      if (slot.pending) schedule(slot);
    });
}

function schedule(slot: Slot): void {
  if (slot.inFlight || slot.timer) return;
  const wait = slot.lastStart + MIN_INTERVAL_MS - Date.now();
  if (wait <= 0) return run(slot);
  slot.timer = setTimeout(() => {
    slot.timer = null;
    if (slot.pending) schedule(slot);
  }, wait);
}

/** Ask for a reload of the list `key` by `fn`: runs now, or once after the running one and the interval. */
export function coalesced(key: string, fn: () => unknown): void {
  let slot = slots.get(key);
  if (!slot) slots.set(key, (slot = { fn, inFlight: false, pending: false, lastStart: 0, timer: null }));
  slot.fn = fn;
  slot.pending = true;
  schedule(slot);
}
