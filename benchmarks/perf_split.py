"""Where the two cores go under gunicorn + wrk, per request: bare Flask app against a page.

A probe for issue 18 (docs/performance.md, "Request overhead", seventh pass): the same servers
as bench_pages.py (the production gunicorn.conf.py, 2 sync workers, the bare app on a second
gunicorn), wrk on the heaviest page and on the bare app while `perf record -a` samples every
CPU (software clock: works in a VM); the samples are split by process (wrk, gunicorn's
workers, the rest) and by shared object (python, the kernel, libsqlite, libc...), and printed
as microseconds of CPU per request. Root (or perf_event_paranoid <= 0) and `perf` needed.

    .venv/bin/python benchmarks/perf_split.py --duration 5 --rounds 2
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent))

import bench_pages as bp  # noqa: E402

FREQUENCY = 2000


def proc_stat() -> list[int]:
    return [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]


def sampled(
    port: int,
    target: bp.Target,
    duration: float,
    out: Path,
    gen: bp.Generator,
    spy: list[str] | None = None,
):
    spies = [
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for command in spy or []
    ]
    perf = subprocess.Popen(
        [
            "perf",
            "record",
            "-a",
            "-F",
            str(FREQUENCY),
            "-e",
            "cpu-clock",
            "-o",
            str(out),
            "--",
            "sleep",
            str(duration + 1.5),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    before = proc_stat()
    sample = gen.run(port, target, duration)
    after = proc_stat()
    perf.wait()
    for process in spies:
        process.wait()
    report = subprocess.run(
        [
            "perf",
            "report",
            "-i",
            str(out),
            "--sort",
            "pid,dso",
            "--stdio",
            "-n",
            "-q",
            "--percent-limit",
            "0.3",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    rows = []
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(\d+)\s+(\d+):(.*?)\s{2,}(\S.*?)\s*$", line)
        if m:
            rows.append((int(m.group(3)), m.group(4), m.group(5), int(m.group(2))))
    delta = [a - b for a, b in zip(after, before, strict=False)]
    return sample, rows, delta


def timings(directory: Path) -> dict[str, float]:
    total: dict[str, float] = collections.Counter()
    for path in directory.glob("timing-*.json"):
        data = json.loads(path.read_text())
        for key in ("requests", "app_cpu", "process_cpu", "gc"):
            total[key] += data[key]
        for generation, runs in enumerate(data["gc_runs"]):
            total[f"gc{generation}"] += runs
    return total


def workers(server: bp.Server) -> set[int]:
    master = server.process.pid
    found = {master}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            found.add(int(stat.parent.name))
    return found


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--form", default="retro")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--targets", default="bare,hello,page")
    parser.add_argument("--spy", help="py-spy executable: collapsed stacks of each worker")
    parser.add_argument("--spy-dir", default="/tmp/page17/spy")
    args = parser.parse_args()
    from selfcheck.demo import DEMO_SLUG

    with tempfile.TemporaryDirectory(prefix="selfcheck-perf-") as tmp:
        workdir = Path(tmp)
        timing_dir = workdir / "timing"
        timing_dir.mkdir()
        os.environ["SELFCHECK_BENCH_TIMING_DIR"] = str(timing_dir)
        url = bp.prepare_database(workdir, 20)
        gen = bp.make_generator("wrk", 8)
        server = bp.Server(workdir, url, args.workers, "wsgi_bench:app")
        bare = bp.Server(workdir, url, args.workers, "wsgi_bare:app")
        try:
            server.wait_ready()
            bare.wait_ready()
            screen = bp.heaviest_screen(args.form)
            cookie = bp.start_questionnaire(server.port, DEMO_SLUG, args.form)
            all_targets = {
                "bare": (bare.port, bp.Target("bare", bp.HELLO_PATH, cookie, port=bare.port)),
                "hello": (server.port, bp.Target("hello", bp.HELLO_PATH, cookie)),
                "page": (server.port, bp.Target("page", f"/q/{screen}", cookie)),
            }
            chosen = [all_targets[n] for n in args.targets.split(",")]
            for port, target in chosen:
                gen.run(port, target, 1)
            for number in range(args.rounds):
                for port, target in chosen:
                    t0 = timings(timing_dir)
                    spy = None
                    if args.spy:
                        Path(args.spy_dir).mkdir(parents=True, exist_ok=True)
                        owner = bare if target.name == "bare" else server
                        spy = [
                            [
                                args.spy,
                                "record",
                                "--pid",
                                str(pid),
                                "--nonblocking",
                                "-r",
                                "400",
                                "-d",
                                str(int(args.duration)),
                                "-f",
                                "raw",
                                "-o",
                                f"{args.spy_dir}/{target.name}-{number + 1}-{pid}.txt",
                            ]
                            for pid in workers(owner) - {owner.process.pid}
                        ]
                    sample, rows, delta = sampled(
                        port, target, args.duration, workdir / "perf.data", gen, spy
                    )
                    n = sample.requests
                    t1 = timings(timing_dir)
                    d = {k: t1[k] - t0.get(k, 0) for k in t1}
                    if d.get("requests"):
                        r = d["requests"]
                        print(
                            f"\n   in the workers ({r:.0f} requests timed): "
                            f"app {d['app_cpu'] / r * 1e6:.0f} us, process between starts "
                            f"{d['process_cpu'] / r * 1e6:.0f} us, gc {d['gc'] / r * 1e6:.1f} us "
                            f"(runs {d['gc0']:.0f}/{d['gc1']:.0f}/{d['gc2']:.0f})"
                        )
                    per = 1e6 / FREQUENCY / n
                    by_comm: dict[str, float] = collections.Counter()
                    by_dso: dict[str, float] = collections.Counter()
                    ours = workers(server) | workers(bare)
                    for pid, comm, dso, count in rows:
                        key = (
                            "wrk"
                            if comm.startswith("wrk")
                            else "worker"
                            if pid in ours
                            else "other"
                        )
                        by_comm[key if key != "other" else "other:" + comm] += count * per
                        by_dso[f"{key}:{dso}"] += count * per
                    total = sum(by_comm.values())
                    tick = 1e6 / os.sysconf("SC_CLK_TCK") / n
                    names = ["user", "nice", "sys", "idle", "iowait", "irq", "softirq"]
                    stat = ", ".join(
                        f"{k} {v * tick:.0f}" for k, v in zip(names, delta, strict=False) if v
                    )
                    print(
                        f"\n== round {number + 1} {target.name}: {sample.rps:.0f} req/s, "
                        f"{sample.bytes_per_request:.0f} B/resp, {total:.0f} us CPU/request "
                        f"sampled; /proc/stat us/request: {stat}"
                    )
                    for comm, us in sorted(by_comm.items(), key=lambda kv: -kv[1])[:6]:
                        print(f"   comm {comm:<22} {us:7.1f} us")
                    for dso, us in sorted(by_dso.items(), key=lambda kv: -kv[1])[:14]:
                        print(f"   {dso:<40} {us:7.1f} us")
        finally:
            server.stop()
            bare.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
