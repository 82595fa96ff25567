// The agents and their messages live in harness/ (shared with the tests); the bench imports them from here.
export * from "../harness/protocol.ts";
