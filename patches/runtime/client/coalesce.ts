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

// Slow-changing lists on a page that reloads on every frame (the Dashboard's stats, total cost,
// recent events, which frames already update in place): slowly(owner, key, fn) reuses the answer
// of the last fn of this owner and key while it is younger than SLOW_MS, so a reload a second asks
// for them once per SLOW_MS. The owner is the page's loader: a new loader (its scope changed)
// starts afresh. A failed answer is not reused.
export const SLOW_MS = 9000;

const slow = new WeakMap<object, Map<string, { at: number; value: Promise<unknown> }>>();

export function slowly<T>(owner: object, key: string, fn: () => Promise<T>): Promise<T> {
  let byKey = slow.get(owner);
  if (!byKey) slow.set(owner, (byKey = new Map()));
  const hit = byKey.get(key);
  if (hit && Date.now() - hit.at < SLOW_MS) return hit.value as Promise<T>;
  const value = fn();
  const entry = { at: Date.now(), value: value as Promise<unknown> };
  byKey.set(key, entry);
  value.catch(() => {
    if (byKey!.get(key) === entry) byKey!.delete(key);
  });
  return value;
}

/**
 * One agents request for two status lists (GET /api/agents?status=working,waiting): the answer split
 * back into the two lists the page asked for, each cut to its own limit. An agent whose status is
 * neither (the server's transient cards, which the limit does not count) goes to the second list, as
 * in its own request.
 */
export function byStatus<R extends { agents: A[] }, A extends { status?: string | null }>(
  res: Promise<R>,
  first: readonly [string, number],
  second: readonly [string, number],
): [Promise<R>, Promise<R>] {
  return [
    res.then((r) => ({ ...r, agents: r.agents.filter((a) => a.status === first[0]).slice(0, first[1]) })),
    res.then((r) => {
      let n = 0;
      return { ...r, agents: r.agents.filter((a) => a.status !== first[0] && (a.status !== second[0] || n++ < second[1])) };
    }),
  ];
}
