"""`smlocal` — the command line: `smlocal serve [...]` (also `python -m emulator serve`)."""

from __future__ import annotations

import argparse
import logging
import sys

from emulator import __version__
from emulator.auth.startup import prepare_auth
from emulator.config import RUNTIMES, Config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smlocal",
        description="A local, offline Amazon SageMaker. Point boto3, the AWS CLI or the SageMaker SDK at "
                    "it with AWS_ENDPOINT_URL=http://127.0.0.1:<port>.",
    )
    parser.add_argument("--version", action="version", version=f"smlocal {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve",
        help="run the service on one port (SageMaker, SageMaker Runtime, S3, CloudWatch Logs, STS, IAM)",
        description="Run smlocal. Every flag also reads an SMLOCAL_* environment variable "
                    "(SMLOCAL_HOST, SMLOCAL_PORT, SMLOCAL_DATA_DIR, SMLOCAL_RUNTIME, SMLOCAL_EPHEMERAL, "
                    "SMLOCAL_THREADS, SMLOCAL_READ_TIMEOUT, SMLOCAL_INSTANCE_LIMITS, SMLOCAL_AUTH, ...).",
    )
    serve.add_argument("--host", help="address to bind (default 127.0.0.1; never 0.0.0.0 unless you mean it)")
    serve.add_argument("--port", type=int, help="port to listen on (default 4580; 0 picks a free one)")
    serve.add_argument("--data-dir", help="where state and S3 objects live (default ~/.local/share/smlocal)")
    serve.add_argument("--runtime", choices=RUNTIMES,
                       help="where jobs and endpoints run: auto (Docker if an engine answers, else local "
                            "processes), docker, process, or fake (nothing runs; for tests)")
    serve.add_argument("--ephemeral", action="store_true", default=None,
                       help="keep everything in memory; nothing survives a restart (fast test runs)")
    serve.add_argument("--threads", type=int,
                       help="threads for the control plane and S3; InvokeEndpoint runs on the event loop, and "
                            "request bodies are read there before a thread is taken (default 16)")
    serve.add_argument("--read-timeout", type=float, metavar="SECONDS",
                       help="seconds without a byte of a request body before the request is answered "
                            "RequestTimeout and its connection closed (default 20)")
    serve.add_argument("--max-concurrent-jobs", type=int,
                       help="training jobs that run at once; the rest wait in Starting (default 4)")
    serve.add_argument("--stop-grace-seconds", type=float,
                       help="seconds between SIGTERM and SIGKILL when a job is stopped (default 120, as AWS)")
    serve.add_argument("--instance-limits", action="store_true", default=None,
                       help="give each training host the vCPUs and memory of its instance type, as AWS does "
                            "(ml.m5.large: 2 CPUs, 8 GiB); memory past it fails the job as on AWS. Docker: CPUs "
                            "and memory; process runtime: memory only (address-space limit)")
    serve.add_argument("--process-image", action="append", metavar="IMAGE=DIR", default=None,
                       help="run IMAGE (a URI or glob) on the process runtime from the local folder DIR, which "
                            "holds its `train` and `serve` programs; repeatable")
    serve.add_argument("--auth", action="store_true", default=None,
                       help="check every request's SigV4 signature against the keys smlocal's IAM issued and the "
                            "root key (all but /_smlocal/health); accounts come from the keys, other accounts' "
                            "buckets and roles are refused, job and endpoint containers get temporary credentials "
                            "of their role (SMLOCAL_AUTH=1; off by default on loopback)")
    serve.add_argument("--auth-root-key", metavar="AKID:SECRET",
                       help="the root key pair of the default account with --auth (SMLOCAL_AUTH_ROOT_KEY; default: "
                            "one generated into the data directory and printed at start)")
    serve.add_argument("--allow-unauthenticated", action="store_true", default=None,
                       help="serve a non-loopback --host without --auth, meaning it to be open "
                            "(SMLOCAL_ALLOW_UNAUTHENTICATED=1); without either, such a host is refused")
    serve.add_argument("--log-level", default="WARNING",
                       help="DEBUG, INFO (one access line per request), WARNING (default) or ERROR")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
        try:
            config = Config.from_env(
                host=args.host, port=args.port, data_dir=args.data_dir, runtime=args.runtime,
                ephemeral=args.ephemeral, threads=args.threads, max_concurrent_jobs=args.max_concurrent_jobs,
                read_timeout=args.read_timeout, instance_limits=args.instance_limits,
                stop_grace_seconds=args.stop_grace_seconds, process_images=_process_images(args.process_image),
                auth=args.auth, auth_root_key=args.auth_root_key, allow_unauthenticated=args.allow_unauthenticated)
            config = prepare_auth(config)
        except ValueError as exc:
            print(f"smlocal: {exc}", file=sys.stderr)
            return 2
        from emulator.app import serve

        try:
            serve(config)
        except OSError as exc:
            print(f"smlocal: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}", file=sys.stderr)
            return 1
    return 0


def _process_images(pairs: list[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    images = {}
    for pair in pairs:
        image, sep, folder = pair.rpartition("=")
        if not sep or not image or not folder:
            raise ValueError(f"--process-image takes IMAGE=DIR, not {pair!r}")
        images[image] = folder
    return images
