// An "MCP server" that prints a banner to stdout instead of speaking MCP.
process.stdout.write("Welcome to my tool server v1.0!\n");
process.stdin.resume();
