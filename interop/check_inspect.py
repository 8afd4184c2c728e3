#!/usr/bin/env python3
"""Check the output of Keel's `inspect` example (one `server`, `protocol`, `tool`, `resource`,
`prompt` or `result` item per line).

    check_inspect.py OUTPUT_FILE [--protocol-prefix P] [--tool NAME]... [--resource URI]... [--result-contains TEXT]... [--result-number N]

Exits 0 when every expectation holds; otherwise prints one line saying what differed and exits 1.
`--result-number N` wants N to be the last number in the result's text blocks (e.g. "The sum of 19 and 23.5 is
42.5." for N=42.5). Standard library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def fail(message: str) -> int:
    print(message)
    return 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("output")
    parser.add_argument("--protocol-prefix", default="")
    parser.add_argument("--tool", action="append", default=[])
    parser.add_argument("--resource", action="append", default=[])
    parser.add_argument("--result-contains", action="append", default=[])
    parser.add_argument("--result-number", type=float)
    args = parser.parse_args()

    with open(args.output, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    servers = [line[len("server ") :] for line in lines if line.startswith("server ")]
    protocols = [line[len("protocol ") :] for line in lines if line.startswith("protocol ")]
    tools = [line[len("tool ") :] for line in lines if line.startswith("tool ")]
    resources = [line[len("resource ") :] for line in lines if line.startswith("resource ")]
    results = [line[len("result ") :] for line in lines if line.startswith("result ")]

    if len(servers) != 1:
        return fail(f"expected one 'server' line, got {len(servers)}")
    if len(protocols) != 1:
        return fail(f"expected one 'protocol' line, got {len(protocols)}")
    if not protocols[0].startswith(args.protocol_prefix):
        return fail(f"protocol {protocols[0]!r} is not a {args.protocol_prefix}* version")
    missing = [name for name in args.tool if name not in tools]
    if missing:
        return fail(f"no 'tool' line for {', '.join(missing)} (tools: {', '.join(tools) or 'none'})")
    missing = [uri for uri in args.resource if uri not in resources]
    if missing:
        return fail(f"no 'resource' line for {', '.join(missing)} (resources: {', '.join(resources) or 'none'})")

    if args.result_contains or args.result_number is not None:
        if len(results) != 1:
            return fail(f"expected one 'result' line, got {len(results)}")
        try:
            result = json.loads(results[0])
        except ValueError as exc:
            return fail(f"the 'result' line is not JSON ({exc}): {results[0][:300]}")
        if not isinstance(result, dict) or not isinstance(result.get("content"), list):
            return fail(f"the result is not a CallToolResult: {results[0][:300]}")
        if result.get("isError"):
            return fail(f"the tool reported an error: {results[0][:300]}")
        text = "\n".join(
            block.get("text", "") for block in result["content"] if isinstance(block, dict) and block.get("type") == "text"
        )
        for wanted in args.result_contains:
            if wanted not in text:
                return fail(f"result text lacks {wanted!r}: {results[0][:300]}")
        if args.result_number is not None:
            numbers = NUMBER.findall(text)
            if not numbers or float(numbers[-1]) != args.result_number:
                return fail(f"result text does not end on the number {args.result_number:g}: {results[0][:300]}")

    print(f"server {servers[0]}, protocol {protocols[0]}, {len(tools)} tools" + (f", result {results[0][:160]}" if results else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
