#!/usr/bin/env node
// The `keyward` bin. It lives outside dist/ because npm links a package's bins before its
// `prepare` script builds dist/: a bin inside dist/ is missing (and not executable) on a fresh
// clone's first `npm install`, so `npx keyward` would not be found.
import { main } from "../dist/cli/main.js";

await main();
