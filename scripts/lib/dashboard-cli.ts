// The flags npm start and npm run demo share, declared once for scripts/lib/cli.ts.
import { option } from "./cli.ts";
import { DEFAULT_PORT, parsePort } from "./dashboard.ts";
import { UPSTREAM_ENV } from "../pipeline/fetch.ts";

export const DASHBOARD_OPTIONS = {
  port: option("<n>", "port on 127.0.0.1; a port in use is an error", (raw, flag) => parsePort(raw, DEFAULT_PORT, flag), DEFAULT_PORT),
  tree: option("<dir>", "run this generated tree as it is, without building"),
  upstream: option("<src>", `passed to the build (default $${UPSTREAM_ENV}, else the pin's URL)`),
};
