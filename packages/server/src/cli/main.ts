#!/usr/bin/env node
console.log("keyward");
