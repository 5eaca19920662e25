"""How fast the labeling page answers a label: ``python -m labelnext.labeling.latency --project P``.

Copies the project to a temporary folder (the real store gets no test labels), serves the
copy on a free loopback port, and times ``n`` label requests over one keep-alive HTTP
connection, as a browser sends them: each relabels the first selected item with the id the
previous answer returned (compare-and-set), so every request is a real store write.
"""
import argparse
import http.client
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from labelnext.utils.console import run_cli
from labelnext.labeling.server import LabelServer


def measure(project, n=200):
    """Median and 95th-percentile milliseconds of ``n`` label requests on a copy of ``project``.

    Returns
    -------
    dict: ``n``, ``median_ms``, ``p95_ms``, ``max_ms``.
    """
    with tempfile.TemporaryDirectory(prefix="al-latency-") as tmp:
        copy = Path(tmp) / "project"
        shutil.copytree(project, copy)
        with LabelServer(copy, port=0).start() as server:
            state = server.session.state()
            if not state["items"]:
                raise ValueError(f"--project {project} has no selection yet: run `al round` first")
            item = state["items"][0]
            expect = item["label"]["id"] if item["label"] else None
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            times = []
            for k in range(n):
                body = json.dumps({"index": item["index"], "class": state["classes"][k % len(state["classes"])],
                                   "expect_id": expect})
                t = time.perf_counter()
                conn.request("POST", "/api/label", body, {"Content-Type": "application/json", "X-Token": server.token})
                resp = conn.getresponse()
                data = resp.read()
                times.append(1000 * (time.perf_counter() - t))
                if resp.status != 200:
                    raise ValueError(f"label request {k} answered {resp.status}: {data[:200]!r}")
                expect = json.loads(data)["row"]["id"]
            conn.close()
    times.sort()
    return {"n": n, "median_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * (n - 1))], 2),
            "max_ms": round(times[-1], 2)}


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m labelnext.labeling.latency", description=__doc__.split("\n\n")[0])
    p.add_argument("--project", required=True, help="a project folder with a selection")
    p.add_argument("-n", type=int, default=200, help="label requests to time")
    args = p.parse_args(argv)
    res = measure(args.project, args.n)
    print(f"{res['n']} label requests: median {res['median_ms']} ms, 95th percentile {res['p95_ms']} ms, "
          f"max {res['max_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
