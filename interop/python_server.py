#!/usr/bin/env python3
"""A small MCP server written with the official Python SDK (`mcp`, pinned in interop/requirements.txt), for Keel's
client to talk to over streamable HTTP.

    python_server.py --port PORT

Serves http://127.0.0.1:PORT/mcp with one tool, `add` {a, b} -> {"sum": a + b} (also as text), and one resource,
`memo://greeting` (text/plain, "hello from python"). Logs go to stderr.
"""

from __future__ import annotations

import argparse

from mcp.server.mcpserver import MCPServer


def build() -> MCPServer:
    server = MCPServer("keel-interop-python-server")

    @server.tool(description="Adds two numbers")
    def add(a: float, b: float) -> dict[str, float]:
        return {"sum": a + b}

    @server.resource("memo://greeting", name="greeting", mime_type="text/plain", description="A greeting")
    def greeting() -> str:
        return "hello from python"

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    build().run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
