/**
 * `@keyward/sdk/cache`: the one bounded LRU cache with single-flight loading that every cache in
 * Keyward's server and SDK is built on.
 */
export { type BoundedCache, type BoundedCacheOptions, createBoundedCache, type LoadTtl } from "./bounded-cache.js";
