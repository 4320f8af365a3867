"""Runs one of the Python examples from start to end: its own Keyward (``node
packages/server/dist/cli/main.js serve`` on its own port and data dir), the agents, the set-up through
the admin API, the demo; then stops everything (Ctrl-C too).

    python examples/python-agents/run.py multi-agent     # Keyward on 8085
    python examples/python-agents/run.py azure-openai    # Keyward on 8086

A failure prints one line, ``run.py <example>: <what to do>``, and exits 1; Ctrl-C exits 130 (0 in
``--serve`` mode, where it is the way to stop).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from contextlib import ExitStack
from pathlib import Path
from types import FrameType

from admin import ExampleError
from launcher import HERE

PORTS = {"multi-agent": 8085, "azure-openai": 8086}


class Stop(Exception):
    """SIGTERM: unwinds like Ctrl-C, so everything started is stopped."""


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise Stop


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="run.py", description=__doc__.split("\n\n")[0])
    examples = parser.add_subparsers(dest="example", required=True, metavar="EXAMPLE")
    multi = examples.add_parser(
        "multi-agent", help="workflow (LangGraph) -> research, through Keyward's gateway"
    )
    azure = examples.add_parser("azure-openai", help="openai.AzureOpenAI on a Keyward token provider")
    for name, sub in (("multi-agent", multi), ("azure-openai", azure)):
        sub.add_argument(
            "--port",
            type=int,
            default=PORTS[name],
            help=f"Keyward's port (default {PORTS[name]}; 0: any free port)",
        )
        sub.add_argument(
            "--data-dir",
            type=Path,
            default=HERE / ".keyward" / name,
            help="Keyward's data dir (default: .keyward/%(default)s beside run.py)".replace(
                "%(default)s", name
            ),
        )
    multi.add_argument(
        "--serve",
        action="store_true",
        help="after the demo, keep everything running until Ctrl-C and print a caller key to try",
    )
    azure.add_argument(
        "--token-lifetime",
        type=int,
        default=9,
        help="seconds the Entra stand-in's tokens live (Keyward refreshes at two thirds; default 9)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    serving: list[bool] = []  # set once the demo is done and --serve keeps things running
    try:
        with ExitStack() as stack:
            try:
                if args.example == "multi-agent":
                    code = _multi_agent(stack, args, serving)
                else:
                    from azure_openai import run_azure_openai

                    code = 0 if run_azure_openai(stack, args.port, args.data_dir, args.token_lifetime) else 1
            finally:
                # Stopping everything: a second Ctrl-C or a SIGTERM must not cut it short.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except ExampleError as err:
        print(f"run.py {args.example}: {err}", file=sys.stderr, flush=True)
        return 1
    except (KeyboardInterrupt, Stop):
        print("\ninterrupted: stopped everything this run started", flush=True)
        return 0 if serving else 130
    print("stopped everything this run started", flush=True)
    return code


def _multi_agent(stack: ExitStack, args: argparse.Namespace, serving: list[bool]) -> int:
    from multi_agent import run_multi_agent

    result = run_multi_agent(stack, args.port, args.data_dir)
    if not result["ok"]:
        print("\nthe demo did not go as expected: see the answers above", file=sys.stderr, flush=True)
        return 1
    print(
        "\ndemo ok: consumer:demo reached research through the workflow (act: agent:workflow); "
        "consumer:demo-limited was refused",
        flush=True,
    )
    if not args.serve:
        return 0
    url = result["url"]
    print("\neverything keeps running. The caller key of consumer:demo, shown once; in another terminal:")
    print(f"  export CALLER_KEY={result['keys']['demo']}")
    print(
        f'  curl -s {url}/agents/workflow/invoke -H "Authorization: Bearer $CALLER_KEY" '
        '-H \'content-type: application/json\' -d \'{"input": {"question": "what is least privilege?"}}\''
    )
    print("Ctrl-C stops everything.", flush=True)
    serving.append(True)
    children = result["children"]
    # Serving until Ctrl-C or SIGTERM (raised here), or until a child ends on its own.
    while all(child.proc.poll() is None for child in children):
        time.sleep(0.5)
    ended = next(child for child in children if child.proc.poll() is not None)
    raise ExampleError(f"{ended.name} stopped by itself (exit {ended.proc.returncode}); stopped the rest")


if __name__ == "__main__":
    sys.exit(main())
