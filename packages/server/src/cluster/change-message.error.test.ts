import { describe, expect, it } from "vitest";
import { decodeChanges } from "./change-message.js";

// Whoever can publish on the channel can at most make replicas drop cache entries; anything that
// is not a well-formed list of known changes is ignored whole.
describe("malformed change messages", () => {
  it.each([
    ["not json", "{"],
    ["no origin", JSON.stringify({ c: [] })],
    ["unknown kind", JSON.stringify({ o: "x", c: [["admin", "all"]] })],
    ["ref not a string", JSON.stringify({ o: "x", c: [["key", 1]] })],
    ["seq not an integer", JSON.stringify({ o: "x", c: [["key", "k", "7"]] })],
    ["extra fields", JSON.stringify({ o: "x", c: [["key", "k", 1, 2]] })],
  ])("rejects a malformed message (%s)", (_, payload) => {
    expect(decodeChanges(payload)).toBeUndefined();
  });
});
