// An "MCP server" that exits at once (a missing module, a bad flag).
process.exit(1);
