"""What the Ray engine costs on one machine, and that a job spreads over several Ray nodes.

Makes N one-face 640x480 photos (`bench/batch.py`'s helpers), then runs `python -m core batch`
the way a user does (`core.batch.engine.run_batch`: list, analyse, write the CSV) with the local engine and
with `--engine ray` on a private local Ray (started once, as the CLI starts it), alternating
them so both see the same load on a shared machine. It reports the median of the ratios measured
run by run, and each engine's CPU time per photo (for Ray: this process and every Ray process),
which the other work on the machine hardly changes. Then it starts a Ray "cluster" of several
nodes on this machine (one raylet each, 1 CPU each, `ray.cluster_utils.Cluster`), joins it with
`--address` like a real cluster, and reports the CPU time and peak memory (RSS) of each node's
worker processes: how the work spread, and photos per worker CPU-second, from which a real
node's throughput follows. Table first, JSON last line.

    .venv/bin/python bench/scale.py [--images 1000] [--runs 3] [--nodes 3]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from batch import make_photos, model_folder  # noqa: E402  (also puts the project on sys.path)

from core.cli import main as cli_main  # noqa: E402

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=3, help="Ray nodes of 1 CPU each for the spread run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photos = make_photos(Path(tmp) / "photos", args.images)
        model, model_kind = model_folder(Path(tmp) / "model")
        cli = lambda engine, address=None: _cli(photos, Path(tmp) / f"{engine}.csv", model, engine, address)  # noqa: E731
        result = {"images": args.images, "photo": "640x480 JPEG, one face", "model": model_kind,
                  "cpus": os.cpu_count(), **_overhead(cli, args.runs, args.images), **_spread(cli, args.nodes, args.images)}
        result["load_average_1min"] = round(os.getloadavg()[0], 1)
    _print_table(result)
    print(json.dumps(result))


def _cli(photos: Path, out: Path, model: Path, engine: str, address: str | None) -> list[str]:
    """The `batch` command line of one run."""
    return (["batch", str(photos), "--out", str(out), "--overwrite", "--model", str(model), "--engine", engine]
            + (["--address", address] if address else []))


def _timed(args: list[str], count: int, ray_processes: "_RayProcesses | None" = None) -> dict:
    """Photos per second of one CLI run (its summary goes nowhere) and the CPU milliseconds per
    photo it cost: this process's, plus Ray's processes' when sampled. CPU time, unlike the rate,
    hardly depends on what else the shared machine is running."""
    before = (time.perf_counter(), time.process_time(), ray_processes.cpu_s() if ray_processes else 0.0)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert cli_main(args) == 0
    wall, cpu = time.perf_counter() - before[0], time.process_time() - before[1]
    if ray_processes:
        cpu += ray_processes.cpu_s() - before[2]
    return {"photos_per_s": count / wall, "cpu_ms_per_photo": 1000 * cpu / count}


def _overhead(cli, runs: int, count: int) -> dict:
    """Local engine and Ray engine on this machine, alternated; the ray start is timed apart."""
    import ray

    from core.batch.ray import RayEngine
    from core.batch.settings import BatchSettings

    local, on_ray = cli("local"), cli("ray")
    _timed(local, count)  # warm-up: file cache, model tracing
    start = time.perf_counter()
    RayEngine(BatchSettings(on_ray[on_ray.index("--model") + 1]))  # starts the private Ray, as the first CLI run would
    ray_start_s = time.perf_counter() - start
    _timed(on_ray, count)  # warm-up: worker processes import the project once
    pairs = []
    with _RayProcesses() as processes:
        for run in range(runs):
            pairs.append((_timed(local, count), _timed(on_ray, count, processes)))
            print(f"run {run + 1}: " + ", ".join(f"{engine} {p['photos_per_s']:.1f} photos/s ({p['cpu_ms_per_photo']:.1f}"
                                                 f" CPU ms/photo)" for engine, p in zip(("local", "ray"), pairs[-1])),
                  file=sys.stderr)
    ray.shutdown()
    median = lambda key, side: round(statistics.median(pair[side][key] for pair in pairs), 1)  # noqa: E731
    ratios = [on_ray["photos_per_s"] / locally["photos_per_s"] for locally, on_ray in pairs]
    return {"local_photos_per_s": median("photos_per_s", 0), "ray_photos_per_s": median("photos_per_s", 1),
            "ray_vs_local": round(statistics.median(ratios), 3), "ratios": [round(r, 3) for r in ratios],
            "local_cpu_ms_per_photo": median("cpu_ms_per_photo", 0), "ray_cpu_ms_per_photo": median("cpu_ms_per_photo", 1),
            "ray_start_s": round(ray_start_s, 1), "ray_worker_rss_mb_max": processes.peak_worker_rss_mb()}


def _spread(cli, nodes: int, images: int) -> dict:
    """One run on `nodes` Ray nodes of 1 CPU each, joined by address: per-node worker CPU and RSS."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "object_store_memory": 100 * 2**20})
    try:
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=1, object_store_memory=100 * 2**20)
        args = cli("ray", cluster.address)
        from core.batch.ray import RayEngine
        from core.batch.settings import BatchSettings

        RayEngine(BatchSettings(args[args.index("--model") + 1]), cluster.address)  # joins; the run below measures the job
        _timed(args, images)  # warm-up: every node's workers import the project once
        with _RayProcesses() as processes:
            run = _timed(args, images, processes)
        per_node = processes.per_node()
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()
    cpu = sum(node["job_cpu_s"] for node in per_node)
    return {"nodes": nodes, "nodes_photos_per_s": round(run["photos_per_s"], 1),
            "nodes_cpu_ms_per_photo": round(run["cpu_ms_per_photo"], 1), "per_node": per_node,
            "photos_per_worker_cpu_s": round(images / cpu, 1) if cpu else None}


class _RayProcesses:
    """Samples this process's descendants (the private Ray or the test cluster: GCS, raylets and
    their worker processes) twice a second while in use: CPU time and peak RSS. Workers are
    titled "ray::..." and are children of their node's raylet, which groups them by node."""

    def __init__(self):
        self._seen: dict[int, dict] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample_until_stopped, daemon=True)

    def __enter__(self):
        self._start_cpu = {pid: info["cpu_s"] for pid, info in self._sample().items()}
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()
        self._sample()

    def _sample_until_stopped(self) -> None:
        while not self._stop.wait(0.5):
            self._sample()

    def _sample(self) -> dict[int, dict]:
        stats = {}
        for pid in (int(name) for name in os.listdir("/proc") if name.isdigit()):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                stats[pid] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS)
        mine, children = {os.getpid()}, {}
        for pid, (parent, _) in stats.items():
            children.setdefault(parent, []).append(pid)
        stack = [os.getpid()]
        while stack:
            for child in children.get(stack.pop(), []):
                if child not in mine:
                    mine.add(child)
                    stack.append(child)
        for pid in mine - {os.getpid()}:
            with contextlib.suppress(OSError, ValueError, IndexError):
                title = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
                rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20
                info = self._seen.setdefault(pid, {"parent": stats[pid][0], "rss_mb": 0.0, "kinds": set()})
                info["cpu_s"] = stats[pid][1]
                info["rss_mb"] = max(info["rss_mb"], rss)
                info["kinds"].add(_kind(title))
        return self._seen

    def cpu_s(self) -> float:
        """CPU seconds of every Ray process sampled so far, now."""
        return sum(info["cpu_s"] for info in self._sample().values())

    def _used(self) -> list[dict]:
        """Worker processes that did something while sampled, with the CPU seconds they spent."""
        return [{**info, "cpu_s": info["cpu_s"] - self._start_cpu.get(pid, 0.0)} for pid, info in self._seen.items()
                if info["kinds"] - {"ray system"} and info["cpu_s"] - self._start_cpu.get(pid, 0.0) > 0.05]

    def peak_worker_rss_mb(self) -> float | None:
        return round(max((info["rss_mb"] for info in self._used()), default=0.0), 1) or None

    def per_node(self) -> list[dict]:
        """Per node: CPU seconds of the job's workers (detection tasks, model actors) and of Ray's
        helper actors, and the job workers' peak RSS."""
        nodes: dict[int, list[dict]] = {}
        for info in self._used():
            nodes.setdefault(info["parent"], []).append(info)
        summary = []
        for i, workers in enumerate(nodes.values()):
            job = [w for w in workers if "ray helper" not in w["kinds"]]  # helpers are actors: always titled
            summary.append({"node": i + 1, "job_workers": len(job), "job_cpu_s": round(sum(w["cpu_s"] for w in job), 1),
                            "ray_helpers_cpu_s": round(sum(w["cpu_s"] for w in workers if w not in job), 1),
                            "rss_mb_max": round(max((w["rss_mb"] for w in job), default=0.0), 1),
                            "kinds": sorted(set().union(*(w["kinds"] for w in job)) - {"idle", "ray system"})})
        return summary


def _kind(title: str) -> str:
    """What a Ray process is doing, from its process title; a worker seen idle that used CPU ran
    tasks between two samples. Ray Data's helper actors (stats, autoscaling) are the rest."""
    if not title.startswith("ray::"):
        return "ray system"  # GCS, raylet, log monitor...
    for word, kind in (("_detect", "detection"), ("_Reader", "model"), ("_scan", "listing"), ("IDLE", "idle")):
        if word in title:
            return kind
    return "ray helper"


def _print_table(result: dict) -> None:
    rows = [("local engine", f"{result['local_photos_per_s']} photos/s", ""),
            ("ray engine, local Ray (2 CPUs)", f"{result['ray_photos_per_s']} photos/s",
             f"{result['ray_vs_local']:.0%} of local (median of {len(result['ratios'])} paired runs)"),
            ("CPU per photo: local / ray (all Ray processes)",
             f"{result['local_cpu_ms_per_photo']} / {result['ray_cpu_ms_per_photo']} ms", ""),
            ("ray start (once per CLI run without --address)", f"{result['ray_start_s']} s", ""),
            ("peak RSS of a Ray worker", f"{result['ray_worker_rss_mb_max']} MB", ""),
            (f"ray engine, {result['nodes']} nodes x 1 CPU (--address)", f"{result['nodes_photos_per_s']} photos/s",
             f"{result['nodes_cpu_ms_per_photo']} CPU ms/photo; {result['photos_per_worker_cpu_s']} photos "
             "per worker CPU-second")]
    rows += [(f"  node {n['node']}", f"{n['job_cpu_s']} CPU s in {n['job_workers']} job workers",
              f"{', '.join(n['kinds'])}; peak RSS {n['rss_mb_max']} MB; Ray helpers {n['ray_helpers_cpu_s']} CPU s")
             for n in result["per_node"]]
    width = max(len(r[0]) for r in rows)
    print(f"{result['images']} photos ({result['photo']}), model {result['model']}, {result['cpus']} CPUs, "
          f"load average {result['load_average_1min']}")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:<28} {note}")


if __name__ == "__main__":
    main()
