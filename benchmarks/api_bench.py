"""Control-plane latency: smlocal against moto's server, through boto3, in one process and one run.

    python benchmarks/api_bench.py [--n 1000] [--jobs 10000] [--seed-via provider|boto3] [--profile]

What it does (see benchmarks/README.md for the latest figures):

1. Starts smlocal in-process *on disk* (``LocalServer(runtime="fake")`` with a temporary data
   directory: SQLite in WAL mode, which is what users get) and moto's ``ThreadedMotoServer`` on
   127.0.0.1, both on free ports, in this process.
2. Builds one boto3 client per server with identical settings (same session, same region and
   credentials, retries off, same connection pool), warms both up, then runs N Create calls and N
   Describe calls per operation (CreateModel/DescribeModel, CreateEndpointConfig/
   DescribeEndpointConfig, CreateTrainingJob/DescribeTrainingJob). Calls are interleaved one by
   one and the server that goes first alternates on every iteration, so neither side profits from
   a warmer cache or a quieter moment. Latency is client-side wall time of the boto3 call.
3. Seeds smlocal with ``--jobs`` training jobs (through the provider path by default, i.e. the
   same `TrainingJobsProvider.create_training_job` an HTTP call reaches, minus HTTP and parsing;
   ``--seed-via boto3`` sends real CreateTrainingJob calls), stops every tenth one so StatusEquals
   has something to select, and times 200 ListTrainingJobs pages per query shape.
4. Prints the tables with the targets: smlocal p50 <= moto p50 for Create and Describe, and a
   ListTrainingJobs page p50 <= 20 ms.

``--profile`` additionally times every ListTrainingJobs query layer by layer (SQL alone, row
decoding, the provider, the WSGI app without sockets, boto3 end to end) with SQLite's query plan,
and runs each smlocal operation under cProfile in-process (through the WSGI callable, no sockets).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

ROOT = common.prepare()

import boto3  # noqa: E402
from botocore.config import Config as BotoConfig  # noqa: E402

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/byo:latest"
CLIENT_CONFIG = BotoConfig(
    region_name=REGION,
    retries={"total_max_attempts": 1, "mode": "standard"},
    max_pool_connections=10,
    connect_timeout=10,
    read_timeout=60,
)
LIST_TARGET_MS = 20.0


# -- requests ---------------------------------------------------------------------------------

def model_request(name: str) -> dict:
    return {
        "ModelName": name,
        "ExecutionRoleArn": ROLE,
        "PrimaryContainer": {
            "Image": IMAGE,
            "ModelDataUrl": f"s3://bench-bucket/models/{name}/model.tar.gz",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "LOG_LEVEL": "INFO"},
        },
        "Tags": [{"Key": "team", "Value": "bench"}],
    }


def endpoint_config_request(name: str, model: str) -> dict:
    return {
        "EndpointConfigName": name,
        "ProductionVariants": [{
            "VariantName": "AllTraffic", "ModelName": model,
            "InitialInstanceCount": 1, "InstanceType": "ml.m5.large", "InitialVariantWeight": 1.0,
        }],
    }


def training_job_request(name: str) -> dict:
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": {"epochs": "10", "lr": "0.01"},
        "InputDataConfig": [{
            "ChannelName": "train",
            "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": "s3://bench-bucket/train/",
                "S3DataDistributionType": "FullyReplicated",
            }},
            "ContentType": "text/csv",
        }],
        "OutputDataConfig": {"S3OutputPath": "s3://bench-bucket/output/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "Tags": [{"Key": "team", "Value": "bench"}],
    }


# Each benchmarked pair: (create op, describe op, request builder, describe key, prerequisite).
PAIRS = [
    ("create_model", "describe_model", lambda i, p: model_request(f"{p}-model-{i}"), "ModelName"),
    ("create_endpoint_config", "describe_endpoint_config",
     lambda i, p: endpoint_config_request(f"{p}-epc-{i}", f"{p}-model-{i}"), "EndpointConfigName"),
    ("create_training_job", "describe_training_job",
     lambda i, p: training_job_request(f"{p}-job-{i}"), "TrainingJobName"),
]
WIRE_NAMES = {
    "create_model": "CreateModel", "describe_model": "DescribeModel",
    "create_endpoint_config": "CreateEndpointConfig", "describe_endpoint_config": "DescribeEndpointConfig",
    "create_training_job": "CreateTrainingJob", "describe_training_job": "DescribeTrainingJob",
    "list_training_jobs": "ListTrainingJobs",
}


# -- statistics -------------------------------------------------------------------------------

def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile of samples in seconds, returned in milliseconds."""
    return common.percentile(samples, q) * 1000.0


def timed(call, **kwargs) -> float:
    start = time.perf_counter()
    call(**kwargs)
    return time.perf_counter() - start


# -- servers ----------------------------------------------------------------------------------

def start_servers():
    from moto.server import ThreadedMotoServer

    from emulator.testing import LocalServer

    data_dir = tempfile.TemporaryDirectory(prefix="smlocal-bench-")
    smlocal = LocalServer(data_dir=data_dir.name, runtime="fake").start()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    return smlocal, moto, f"http://{host}:{port}", data_dir


def clients(smlocal_url: str, moto_url: str):
    session = boto3.session.Session(region_name=REGION)
    return (session.client("sagemaker", endpoint_url=smlocal_url, config=CLIENT_CONFIG),
            session.client("sagemaker", endpoint_url=moto_url, config=CLIENT_CONFIG))


# -- phase 1: smlocal against moto ------------------------------------------------------------

def warm_up(targets: dict, rounds: int) -> None:
    for prefix, client in targets.items():
        for i in range(rounds):
            for create, describe, build, key in PAIRS:
                request = build(i, f"warm-{prefix}")
                getattr(client, create)(**request)
                getattr(client, describe)(**{key: request[key]})
        client.list_models(MaxResults=10)


def compare(targets: dict, n: int) -> list[dict]:
    """Interleaved, alternating-first timing of every Create then every Describe call."""
    names = list(targets)
    samples = {(op, side): [] for pair in PAIRS for op in pair[:2] for side in names}
    for create, describe, build, key in PAIRS:
        for op, make in ((create, lambda i, p: build(i, p)),
                         (describe, lambda i, p: {key: build(i, p)[key]})):
            for i in range(n):
                order = names if i % 2 == 0 else names[::-1]
                for side in order:
                    samples[(op, side)].append(timed(getattr(targets[side], op), **make(i, f"b-{side}")))
    rows = []
    for create, describe, _, _ in PAIRS:
        for op in (create, describe):
            sm, mt = samples[(op, "smlocal")], samples[(op, "moto")]
            rows.append({
                "operation": WIRE_NAMES[op],
                "sm50": percentile(sm, 50), "sm99": percentile(sm, 99),
                "mt50": percentile(mt, 50), "mt99": percentile(mt, 99),
            })
    return rows


def print_compare(rows: list[dict], n: int) -> bool:
    print(f"\n## smlocal vs moto, N={n} calls per operation per server (boto3, interleaved, ms)\n")
    print("| operation | smlocal p50 ms | smlocal p99 ms | moto p50 ms | moto p99 ms "
          "| ratio p50 (smlocal/moto) | target smlocal p50 <= moto p50 |")
    print("|---|---:|---:|---:|---:|---:|---|")
    all_met = True
    for r in rows:
        ratio = r["sm50"] / r["mt50"] if r["mt50"] else float("inf")
        met = r["sm50"] <= r["mt50"]
        all_met &= met
        print(f"| {r['operation']} | {r['sm50']:.2f} | {r['sm99']:.2f} | {r['mt50']:.2f} | {r['mt99']:.2f} "
              f"| {ratio:.2f} | {'met' if met else 'MISSED'} |")
    return all_met


# -- phase 2: ListTrainingJobs over many jobs -------------------------------------------------

def seed_jobs(smlocal, client, count: int, via: str) -> float:
    start = time.perf_counter()
    if via == "boto3":
        for i in range(count):
            client.create_training_job(**training_job_request(f"list-job-{i:05d}"))
    else:
        from emulator.context import RequestContext
        from emulator.protocol import shapes
        from emulator.protocol.models import operation_model

        handler = smlocal.app.handlers["sagemaker"]["CreateTrainingJob"]
        shape = operation_model("sagemaker", "CreateTrainingJob").input_shape
        for i in range(count):
            ctx = RequestContext(account="123456789012", region=REGION, service="sagemaker",
                                 operation="CreateTrainingJob")
            handler(ctx, shapes.read_input(shape, training_job_request(f"list-job-{i:05d}")))
    return time.perf_counter() - start


def stop_some(smlocal, client, count: int, every: int) -> None:
    for i in range(0, count, every):
        client.stop_training_job(TrainingJobName=f"list-job-{i:05d}")
    want = len(range(0, count, every))
    deadline = time.time() + 60
    while time.time() < deadline:
        got = len(smlocal.app.store.all("training-job", "Stopped"))
        if got >= want:
            return
        time.sleep(0.1)


LIST_QUERIES = [
    ("default page (MaxResults 10)", {}),
    ("MaxResults=100", {"MaxResults": 100}),
    ("MaxResults=100, middle page via NextToken", {"MaxResults": 100, "_page": "middle"}),
    ("SortBy=Name, MaxResults=100", {"SortBy": "Name", "MaxResults": 100}),
    ("SortBy=Name Ascending, MaxResults=10", {"SortBy": "Name", "SortOrder": "Ascending"}),
    ("SortBy=Status, MaxResults=100", {"SortBy": "Status", "MaxResults": 100}),
    ("NameContains='job-01', MaxResults=100", {"NameContains": "job-01", "MaxResults": 100}),
    ("NameContains='nomatch' (scans all)", {"NameContains": "nomatch", "MaxResults": 100}),
    ("StatusEquals=Stopped, MaxResults=100", {"StatusEquals": "Stopped", "MaxResults": 100}),
    ("StatusEquals=InProgress, MaxResults=10", {"StatusEquals": "InProgress"}),
    ("StatusEquals=Stopped + NameContains + SortBy=Name", {
        "StatusEquals": "Stopped", "NameContains": "job-0", "SortBy": "Name", "MaxResults": 100}),
]


def token_for_page(client, params: dict, page: int) -> str | None:
    token = None
    for _ in range(page - 1):
        token = client.list_training_jobs(**params, **({"NextToken": token} if token else {}))["NextToken"]
    return token


def list_request(client, label: str, query: dict, jobs: int) -> tuple[str, dict]:
    """A LIST_QUERIES entry as a ListTrainingJobs request: its `_`-keys dropped, and a `_page`
    query given the NextToken of a page in the middle of `jobs` (named in the label)."""
    params = {k: v for k, v in query.items() if not k.startswith("_")}
    if "_page" in query:
        page = max(2, jobs // 200)
        params["NextToken"] = token_for_page(client, params, page)
        label = label.replace("middle page", f"page {page}")
    return label, params


def measure_lists(client, calls: int, jobs: int) -> list[dict]:
    rows = []
    for label, query in LIST_QUERIES:
        label, params = list_request(client, label, query, jobs)
        first = client.list_training_jobs(**params)
        for _ in range(10):
            client.list_training_jobs(**params)
        samples = [timed(client.list_training_jobs, **params) for _ in range(calls)]
        rows.append({"query": label, "items": len(first["TrainingJobSummaries"]),
                     "p50": percentile(samples, 50), "p99": percentile(samples, 99)})
    return rows


def print_lists(rows: list[dict], jobs: int, seeded_via: str, seed_seconds: float, calls: int) -> bool:
    how = ("boto3 CreateTrainingJob calls" if seeded_via == "boto3" else
           "the provider path (TrainingJobsProvider.create_training_job, no HTTP)")
    print(f"\n## ListTrainingJobs over {jobs} training jobs in smlocal "
          f"({calls} calls per row, boto3, ms)\n")
    print(f"Seeded through {how} in {seed_seconds:.1f} s "
          f"({jobs / seed_seconds:.0f} jobs/s); every 10th job stopped.\n")
    print(f"| query | items on page | p50 ms | p99 ms | target p50 <= {LIST_TARGET_MS:.0f} ms |")
    print("|---|---:|---:|---:|---|")
    all_met = True
    for r in rows:
        met = r["p50"] <= LIST_TARGET_MS
        all_met &= met
        print(f"| {r['query']} | {r['items']} | {r['p50']:.2f} | {r['p99']:.2f} | {'met' if met else 'MISSED'} |")
    return all_met


# -- optional: where smlocal's time goes ------------------------------------------------------

class _SqlSpy:
    """Stands in for the store's sqlite3 connection for one call, to capture the SQL it runs."""

    def __init__(self, db):
        self.db, self.statements = db, []

    def execute(self, sql, args=()):
        self.statements.append((sql, list(args)))
        return self.db.execute(sql, args)

    def __getattr__(self, name):
        return getattr(self.db, name)


def _median_ms(fn, calls: int) -> float:
    fn()
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return percentile(samples, 50)


def _wsgi_caller(app):
    import json

    def call(op: str, body: dict) -> bytes:
        raw = json.dumps(body).encode()
        environ = {
            "REQUEST_METHOD": "POST", "PATH_INFO": "/", "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "0", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(raw), "CONTENT_LENGTH": str(len(raw)),
            "CONTENT_TYPE": "application/x-amz-json-1.1", "HTTP_X_AMZ_TARGET": f"SageMaker.{op}",
            "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=testing/20240101/us-east-1/sagemaker/"
                                  "aws4_request, SignedHeaders=host, Signature=0",
        }
        return b"".join(app(environ, lambda status, headers: None))

    return call


def list_breakdown(smlocal, client, jobs: int, calls: int = 50) -> None:
    """Per ListTrainingJobs query: the time of each layer, cumulative, and SQLite's query plan."""
    from emulator.context import RequestContext
    from emulator.protocol import shapes
    from emulator.protocol.models import operation_model

    app, store = smlocal.app, smlocal.app.store
    handler = app.handlers["sagemaker"]["ListTrainingJobs"]
    shape = operation_model("sagemaker", "ListTrainingJobs").input_shape
    wsgi = _wsgi_caller(app)
    print(f"\n### Where a ListTrainingJobs page spends its time (p50 of {calls} calls, ms, cumulative layers)\n")
    print("| query | SQL only | + row decoding (Store.query) | + summaries (provider) "
          "| + parse/serialize (WSGI, no socket) | + HTTP, waitress, botocore (boto3) | SQLite plan |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for label, query in LIST_QUERIES:
        label, params = list_request(client, label, query, jobs)
        ctx = lambda: RequestContext(account="123456789012", region=REGION)  # noqa: E731
        parsed = shapes.read_input(shape, params)
        spy = _SqlSpy(store._db)
        store._db = spy
        try:
            handler(ctx(), parsed)
        finally:
            store._db = spy.db
        sql, args = spy.statements[-1]
        plan = "; ".join(row[3] for row in store._db.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall())
        captured = {}
        original_query = store.query

        def capture(q):
            captured["q"] = q
            return original_query(q)

        store.query = capture
        try:
            handler(ctx(), parsed)
        finally:
            del store.query
        layers = [
            _median_ms(lambda: store._db.execute(sql, args).fetchall(), calls),
            _median_ms(lambda: store.query(captured["q"]), calls),
            _median_ms(lambda: handler(ctx(), parsed), calls),
            _median_ms(lambda: wsgi("ListTrainingJobs", params), calls),
            _median_ms(lambda: client.list_training_jobs(**params), calls),
        ]
        print(f"| {label} | " + " | ".join(f"{v:.2f}" for v in layers) + f" | {plan} |")


def profile_in_process(smlocal, n: int) -> None:
    """cProfile each smlocal operation straight through the WSGI app (no sockets, no waitress)."""
    call = _wsgi_caller(smlocal.app)
    plans = [
        ("CreateModel", lambda i: model_request(f"prof-model-{i}")),
        ("DescribeModel", lambda i: {"ModelName": f"prof-model-{i}"}),
        ("CreateTrainingJob", lambda i: training_job_request(f"prof-job-{i}")),
        ("DescribeTrainingJob", lambda i: {"TrainingJobName": f"prof-job-{i}"}),
        ("ListTrainingJobs", lambda i: {"MaxResults": 100}),
        ("ListTrainingJobs", lambda i: {"MaxResults": 100, "SortBy": "Status"}),
        ("ListTrainingJobs", lambda i: {"MaxResults": 100, "NameContains": "nomatch"}),
    ]
    for op, build in plans:
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        for i in range(n):
            call(op, build(i))
        profiler.disable()
        per_call = (time.perf_counter() - start) / n * 1000
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(14)
        print(f"\n### cProfile {op} {build(0) if op.startswith('List') else ''} "
              f"({n} in-process WSGI calls, {per_call:.3f} ms/call under the profiler)\n")
        print("```")
        lines = [line for line in out.getvalue().splitlines() if line.strip()]
        print("\n".join(line.replace(str(ROOT) + "/", "").replace(sys.prefix, "<py>") for line in lines[3:]))
        print("```")


# -- main -------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="calls per operation per server")
    parser.add_argument("--jobs", type=int, default=10000, help="training jobs to seed for ListTrainingJobs")
    parser.add_argument("--list-calls", type=int, default=200, help="ListTrainingJobs calls per query")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up rounds per server")
    parser.add_argument("--seed-via", choices=("provider", "boto3"), default="provider")
    parser.add_argument("--profile", action="store_true",
                        help="also break ListTrainingJobs down by layer and cProfile smlocal in-process")
    parser.add_argument("--skip-compare", action="store_true", help="skip the smlocal/moto comparison")
    args = parser.parse_args(argv)

    logging.disable(logging.WARNING)
    smlocal, moto, moto_url, data_dir = start_servers()
    try:
        sm_client, moto_client = clients(smlocal.url, moto_url)
        targets = {"smlocal": sm_client, "moto": moto_client}
        load = common.load_average()
        print(f"# smlocal API benchmark\n\nPython {sys.version.split()[0]}, {os.cpu_count()} CPUs "
              f"(load average at start {load}); "
              f"smlocal {smlocal.url} (on disk: {smlocal.config.data_dir}, runtime=fake, "
              f"waitress threads={smlocal.config.threads}); moto {moto_url} (ThreadedMotoServer).")
        api_met = True
        if not args.skip_compare:
            warm_up(targets, args.warmup)
            api_met = print_compare(compare(targets, args.n), args.n)

        seconds = seed_jobs(smlocal, sm_client, args.jobs, args.seed_via)
        stop_some(smlocal, sm_client, args.jobs, 10)
        list_rows = measure_lists(sm_client, args.list_calls, args.jobs)
        list_met = print_lists(list_rows, args.jobs, args.seed_via, seconds, args.list_calls)

        print(f"\nLoad average at the end: {common.load_average()}.")
        print(f"\nTargets: Create/Describe smlocal p50 <= moto p50: {'MET' if api_met else 'MISSED'}; "
              f"ListTrainingJobs page p50 <= {LIST_TARGET_MS:.0f} ms: {'MET' if list_met else 'MISSED'}.")
        if args.profile:
            list_breakdown(smlocal, sm_client, args.jobs)
            profile_in_process(smlocal, min(args.n, 300))
        return 0
    finally:
        moto.stop()
        smlocal.stop()
        data_dir.cleanup()


if __name__ == "__main__":
    sys.exit(main())
