"""The MCP edge: the server, its tools, resources and prompts, and the HTTP deployment."""
