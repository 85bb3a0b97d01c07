"""The size of an MCP server's tool list, as an assistant pays for it in every conversation:
the bytes of the `tools/list` response on stdio, adobot's (per mode) beside Microsoft's
`@azure-devops/mcp` 2.10.0 (from the npm registry), each started and asked the same way.

    .venv/bin/python bench/mcp_tools.py          (also step 8 of bench/run.py)

Microsoft's package is installed into bench/out/mcp-node on first use; its keychain module
needs Debian's libsecret-1-dev to build. Where node, npm or the package is missing, its row
says so instead of a figure.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
MICROSOFT = "@azure-devops/mcp@2.10.0"
NODE_DIR = OUT / "mcp-node"
SERVER_JS = NODE_DIR / "node_modules" / "@azure-devops" / "mcp" / "dist" / "index.js"
TARGET = 1 / 3  # adobot's bytes a tool, at most a third of Microsoft's


def tools_list(command: list[str], env: dict[str, str]) -> tuple[int, int]:
    """(tools, bytes of the tools/list response line) from a stdio MCP server: initialize,
    initialized, tools/list, as a client does."""
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, env=env)
    try:
        def send(message: dict) -> None:
            process.stdin.write(json.dumps(message).encode() + b"\n")
            process.stdin.flush()

        def answer(request_id: int) -> bytes:
            while True:
                line = process.stdout.readline()
                if not line:
                    raise RuntimeError(f"{command[0]} ended without answering")
                if json.loads(line).get("id") == request_id:
                    return line

        send({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "adobot-bench", "version": "1"}}})
        answer(1)
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}})
        line = answer(2)
        return len(json.loads(line)["result"]["tools"]), len(line)
    finally:
        process.kill()
        process.wait()


def microsoft() -> tuple[int, int] | str:
    """Microsoft's figure, or why there is none."""
    if not (shutil.which("node") and shutil.which("npm")):
        return "node and npm are not installed"
    if not SERVER_JS.exists():
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix",
                               str(NODE_DIR), MICROSOFT], capture_output=True, text=True)
        if done.returncode != 0 or not SERVER_JS.exists():
            return (f"npm install {MICROSOFT} failed (apt-get install libsecret-1-dev, for its "
                    f"keychain module): {done.stderr.strip().splitlines()[-1:]}")
    # It lists its tools without signing in; a placeholder token keeps it from a browser.
    return tools_list(["node", str(SERVER_JS), "contoso", "--authentication", "envvar"],
                      {"PATH": os.environ.get("PATH", ""), "ADO_MCP_AUTH_TOKEN": "placeholder"})


def adobot(mode: str) -> tuple[int, int]:
    return tools_list([sys.executable, "-m", "adobot", "mcp", "--sandbox", "--mode", mode],
                      dict(os.environ))


def rows() -> list[dict]:
    theirs = microsoft()
    found = []
    measured = {mode: adobot(mode) for mode in ("review", "read-only", "autonomous")}
    for mode, (count, size) in measured.items():
        entry = {"what": f"MCP tool list: bytes a tool of the `tools/list` response on stdio, "
                         f"`adobot mcp --mode {mode}`" + (" (the default)" if mode == "review"
                                                          else ""),
                 "adobot": f"{size / count:.0f} B ({count} tools, {size:,} B)",
                 "target": round(TARGET, 4), "samples": {"adobot": [count, size]}}
        if isinstance(theirs, str):
            found.append({**entry, "baseline": "not measured", "ratio": None,
                          "baseline_name": f"{MICROSOFT}: {theirs}"})
            continue
        their_count, their_size = theirs
        found.append({**entry, "baseline": f"{their_size / their_count:.0f} B ({their_count} "
                                           f"tools, {their_size:,} B)",
                      "ratio": (size / count) / (their_size / their_count),
                      "baseline_name": f"{MICROSOFT}, every domain; the same requests, the "
                                       "same count (the response line as sent)",
                      "note": "every input described; each tool also carries the four MCP "
                              "annotations and an output schema, which Microsoft's do not"
                              + (_with_confirm(measured) if mode == "review" else "")})
    return found


def _with_confirm(measured: dict[str, tuple[int, int]]) -> str:
    """Review lists autonomous's tools and Confirm, a small one that lowers the average."""
    count, size = measured["autonomous"]
    return (f"; the {count} tools it shares with autonomous average {size / count:.0f} B on "
            "their own, Confirm brings the average down")


if __name__ == "__main__":
    for entry in rows():
        ratio = "" if entry["ratio"] is None else f"  ratio {entry['ratio']:.2f}"
        print(f"{entry['what']}: {entry['adobot']} vs {entry['baseline']}{ratio}")
