"""``adobot sandbox``: the Azure DevOps emulator, standalone."""
from __future__ import annotations

import argparse

from adobot.errors import InvalidInput, NetworkError


def register(commands: argparse._SubParsersAction) -> None:
    sandbox = commands.add_parser("sandbox", help="serve the Azure DevOps emulator on 127.0.0.1",
                                  description="Serve the embedded Azure DevOps emulator until "
                                              "interrupted (Ctrl-C).")
    sandbox.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    sandbox.add_argument("--seed", metavar="FILE", help="seed data (JSON; default: built-in)")
    sandbox.add_argument("--latency", type=float, metavar="MS",
                         help="answer every request after MS milliseconds, like a distant "
                              "service (default: at once, or the seed's latency)")
    sandbox.add_argument("--jitter", type=float, default=0.0, metavar="MS",
                         help="with --latency: vary it by up to MS milliseconds either way")
    sandbox.set_defaults(handler=_sandbox)


def _sandbox(args: argparse.Namespace) -> int:
    import threading

    from adobot.sandbox import Sandbox
    from adobot.sandbox.state import load_seed

    if not 0 <= args.port <= 65535:
        raise InvalidInput(f"--port {args.port} is not a TCP port (0 to 65535)",
                           "Choose a port from 1024 to 65535, or omit --port for a free one.",
                           field="--port")
    try:
        seed = load_seed(args.seed) if args.seed else None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"seed file {args.seed!r} cannot be read: {exc}",
                           "Give a JSON file shaped like sandbox/seed.json.",
                           field="--seed") from None
    try:
        sandbox = Sandbox(seed=seed, port=args.port, latency_ms=args.latency,
                          jitter_ms=args.jitter).start()
    except ValueError as exc:
        raise InvalidInput(f"--latency {args.latency} / --jitter {args.jitter}: {exc}",
                           "Give --latency 0 or more, and --jitter at most --latency.",
                           field="--latency") from None
    except OSError as exc:
        raise NetworkError(f"cannot listen on port {args.port}: {exc.strerror}",
                           "Choose another --port, or omit it for a free one.",
                           after_request=True) from None
    print(f"Azure DevOps sandbox on {sandbox.url}", flush=True)
    for name in sorted(o.name for o in sandbox.state.organizations.values()):
        print(f"  organization URL: {sandbox.url}/{name}")
    print("  tokens: " + ", ".join(sorted(sandbox.state.tokens)), flush=True)
    if not sandbox.entra_route().closed:  # the seed names Entra identities
        entra = sandbox.state.entra
        print(f"  Entra: AZURE_AUTHORITY_HOST={sandbox.tls_url} "
              f"REQUESTS_CA_BUNDLE={sandbox.ca_file}")
        print(f"  managed identity: IDENTITY_ENDPOINT={sandbox.identity_endpoint} "
              f"IDENTITY_HEADER={entra.identity_header}")
        print("  identities: " + ", ".join(f"{i.client_id} ({i.kind})"
                                            for i in entra.identities), flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
    return 0
