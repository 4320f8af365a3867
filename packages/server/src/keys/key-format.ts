// The secret format (kwk_/kwa_/kwr_) is shared by API keys, admin tokens and refresh tokens, so it
// lives below all three in crypto/secret-format.ts; import it from there. This path remains for
// the benchmarks (bench/ loads dist/keys/key-format.js) and the anomaly/ files that still use it.
export * from "../crypto/secret-format.js";
