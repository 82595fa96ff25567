// The hook clients live in harness/ (shared with the tests).
export * from "../harness/hook-client.ts";
