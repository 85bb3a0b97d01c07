"""adobot's actions as MCP tools (`adobot mcp`): a thin adapter over the action registry."""
