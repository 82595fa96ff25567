// The one place the bench gets its monitor launcher from.
// TEMPORARY: re-exports the local stand-in until test/support/monitor.ts lands; then point
// this at "../test/support/monitor.ts" and delete bench/monitor-standin.ts.
export { startMonitor } from "./monitor-standin.ts";
export type { Monitor, StartMonitorOptions } from "./monitor-standin.ts";
