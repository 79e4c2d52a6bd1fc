"""Speed of zipcal's selection against a pure-Python reference, measured in one run.

On one deterministic corpus (``benches/corpus.py``) it measures, each in a fresh
subprocess so that peak RSS belongs to that measurement alone:

(a) zipcal end to end: ``zipcal.select(parquet_paths, n=128, tokenizer=mode)``
    including reading the Parquet files, for each mode (``words``, ``gpt2``, or a
    ``tokenizer.json`` path): seconds, MB/s, Mtokens/s, peak RSS;
(b) the Python reference (``benches/reference.py``) on the same text; on corpora
    larger than ``--reference-sample-mb`` it runs on the first documents totalling
    that much text and its time is extrapolated linearly to the full corpus
    (zipcal is also run on that sample, for a same-bytes comparison and to check
    that both select the same documents);
(c) Hugging Face ``tokenizers`` ``encode_batch`` alone on the reference's text;
(d) a plain pyarrow read of the text column (sum of string lengths): the
    I/O + decode ceiling.

``--scaling 100M,200M,500M,1G`` instead runs zipcal alone at several corpus
sizes (fresh subprocess per run) and reports time and peak RSS per size.

Results go to ``--out`` (Markdown) and the same path with ``.json``, written
atomically. Progress goes to stderr.

Usage::

    python benches/bench_selection.py --size 200M
    python benches/bench_selection.py --size 30M --modes words,gpt2 --reference-sample-mb 20
    python benches/bench_selection.py --scaling 100M,200M,500M,1G
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

import corpus as corpus_mod  # noqa: E402

MB = 1e6
MIB = 1024 * 1024


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# =================================================================== worker side


def _rss() -> Dict[str, int]:
    """Current and peak resident set size of this process, in bytes."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    out[key] = int(value.split()[0]) * 1024
    except OSError:
        pass
    if "VmHWM" not in out:
        import resource

        out["VmHWM"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rss": out.get("VmRSS", 0), "peak_rss": out["VmHWM"]}


def _cpu() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _apply_threads(threads: Optional[int]) -> None:
    if threads:
        import pyarrow as pa

        pa.set_cpu_count(threads)


def work_read(spec: Dict[str, Any]) -> Dict[str, Any]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    _apply_threads(spec.get("threads"))
    base = _rss()
    c0 = _cpu()
    t0 = time.perf_counter()
    nbytes = rows = 0
    for p in spec["paths"]:
        for rb in pq.ParquetFile(p).iter_batches(columns=["text"]):
            col = rb.column(0)
            nbytes += pc.sum(pc.binary_length(col)).as_py() or 0
            rows += len(col)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "cpu_seconds": _cpu() - c0,
        "bytes": nbytes,
        "rows": rows,
        "baseline_rss": base["rss"],
        **_rss(),
    }


def work_zipcal(spec: Dict[str, Any]) -> Dict[str, Any]:
    import pyarrow as pa

    import zipcal
    from zipcal import _core
    from zipcal.tokenizer import gpt2_tokenizer_json

    threads = spec.get("threads")
    _apply_threads(threads)
    mode = spec["mode"]
    select = zipcal.select  # imports the selection engine (and numpy) before the timer
    base = _rss()
    c0 = _cpu()
    t0 = time.perf_counter()
    sel = select(spec["paths"], n=spec["n"], tokenizer=mode, threads=threads)
    seconds = time.perf_counter() - t0
    cpu_seconds = _cpu() - c0
    rss = _rss()
    st = sel.stats
    report = sel.pool.report
    setup = None
    if mode == "gpt2":  # cost of building the tokenizer + type table, included above
        t1 = time.perf_counter()
        _core.Segmenter.from_json(gpt2_tokenizer_json(), "gpt2")
        setup = time.perf_counter() - t1
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "ingest_seconds": st["ingest_seconds"],
        "select_seconds": st["select_seconds"],
        "tokenizer_setup_seconds": setup,
        "bytes": int(report["bytes"]),
        "rows": int(report["rows"]),
        "candidates": int(st["pool_candidates"]),
        "pool_tokens": int(st["pool_tokens"]),
        "all_tokens": int(report["tokens"]),
        "types_available": int(st["types_available"]),
        "types_covered": int(st["types_covered"]),
        "gain_evaluations": st.get("gain_evaluations"),
        "distinct_chunks_cached": getattr(sel.pool.corpus, "cache_len", None),
        "picked_rows": [int(r) for r in sel.indices],
        "threads": zipcal.get_num_threads() if threads is None else threads,
        "pyarrow_threads": pa.cpu_count(),
        "baseline_rss": base["rss"],
        **rss,
    }


def work_reference(spec: Dict[str, Any]) -> Dict[str, Any]:
    # The modules its stages import, imported before the timer as for the others.
    import pyarrow.compute  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import reference
    import tokenizers  # noqa: F401

    _apply_threads(spec.get("threads"))
    base = _rss()
    c0 = _cpu()
    res = reference.reference_select(spec["paths"], spec["mode"], spec["n"], greedy=spec["greedy"])
    cpu_seconds = _cpu() - c0
    res.pop("gains")
    res["stage_seconds"] = res.pop("seconds")
    return {
        "seconds": res["stage_seconds"]["total"],
        "cpu_seconds": cpu_seconds,
        "baseline_rss": base["rss"],
        **res,
        **_rss(),
    }


def work_encode(spec: Dict[str, Any]) -> Dict[str, Any]:
    import reference

    _apply_threads(spec.get("threads"))
    texts, nbytes = reference.read_texts(spec["paths"])
    tok = reference.load_tokenizer(spec["mode"])
    tok.encode_batch(texts[:100], add_special_tokens=False)  # start the thread pool
    base = _rss()
    batch = spec.get("batch", reference.BATCH)
    tokens = 0
    c0 = _cpu()
    t0 = time.perf_counter()
    for lo in range(0, len(texts), batch):
        for enc in tok.encode_batch(texts[lo : lo + batch], add_special_tokens=False):
            tokens += len(enc.ids)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "cpu_seconds": _cpu() - c0,
        "bytes": nbytes,
        "rows": len(texts),
        "tokens": tokens,
        "baseline_rss": base["rss"],
        **_rss(),
    }


WORKERS = {"read": work_read, "zipcal": work_zipcal, "reference": work_reference, "encode": work_encode}


def worker_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    result = WORKERS[spec["kind"]](spec)
    sys.stdout.write("\n" + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


# =================================================================== orchestration


def run_worker(spec: Dict[str, Any], threads: Optional[int]) -> Dict[str, Any]:
    env = dict(os.environ)
    if threads:
        env["ZIPCAL_NUM_THREADS"] = str(threads)
        env["RAYON_RS_NUM_CPUS"] = str(threads)  # Hugging Face tokenizers' pool
        env["RAYON_NUM_THREADS"] = str(threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "true")
    # Nothing measured uses BLAS; numpy's OpenBLAS threads otherwise busy-wait for
    # about 0.1 s of CPU after numpy is imported, beside the measured call.
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    spec = dict(spec, threads=threads)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--worker", json.dumps(spec)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {spec['kind']} ({spec.get('mode')}) failed with exit code {proc.returncode}")
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    res = json.loads(lines[-1])
    res["process_seconds"] = time.perf_counter() - t0
    return res


def measure(label: str, spec: Dict[str, Any], threads: Optional[int], repeat: int) -> Dict[str, Any]:
    """Run a worker ``repeat`` times; keep the run with the median time, all times,
    and the largest peak RSS."""
    runs = []
    for k in range(repeat):
        log(f"{label}" + (f" (run {k + 1}/{repeat})" if repeat > 1 else "") + " ...")
        r = run_worker(spec, threads)
        log(
            f"  {label}: {r['seconds']:.2f}s (CPU {r.get('cpu_seconds', 0):.2f}s), "
            f"peak RSS {r['peak_rss'] / MIB:.0f} MiB"
        )
        runs.append(r)
    times = [r["seconds"] for r in runs]
    med = sorted(runs, key=lambda r: r["seconds"])[(len(runs) - 1) // 2]
    out = dict(med)
    out["all_seconds"] = times
    out["peak_rss"] = max(r["peak_rss"] for r in runs)
    out["seconds_stdev"] = statistics.stdev(times) if len(times) > 1 else None
    return out


def warm_cache(paths: Sequence[str]) -> None:
    """Read the files once so that every measurement sees the same (warm) page cache."""
    t0 = time.perf_counter()
    n = 0
    for p in paths:
        with open(p, "rb") as f:
            while True:
                b = f.read(16 * MIB)
                if not b:
                    break
                n += len(b)
    log(f"page cache warmed: {n / MB:.0f} MB of Parquet in {time.perf_counter() - t0:.1f}s")


def sample_file(manifest: Dict[str, Any], sample_bytes: int) -> Optional[str]:
    """A Parquet file holding the corpus's first documents totalling ``sample_bytes``
    of text (cached next to the corpus); None when the sample would be the whole corpus."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import reference

    if sample_bytes >= manifest["bytes"]:
        return None
    folder = Path(manifest["paths"][0]).parent
    path = folder / f"sample-{corpus_mod.size_label(sample_bytes)}.parquet"
    if not path.is_file():
        texts, n = reference.read_texts(manifest["paths"], sample_bytes)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        try:
            pq.write_table(pa.table({"text": texts}), tmp, row_group_size=corpus_mod.ROW_GROUP_ROWS)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        log(f"reference sample: first {len(texts)} documents, {n / MB:.1f} MB -> {path}")
    return str(path)


# =================================================================== environment


def hardware() -> Dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    ram = int(line.split()[1]) * 1024
                    break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "ram_bytes": ram,
        "os": f"{platform.system()} {platform.release()}",
        "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def versions() -> Dict[str, Any]:
    out: Dict[str, Any] = {"python": platform.python_version()}
    for mod in ("zipcal", "tokenizers", "pyarrow", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception:  # noqa: BLE001 - a missing package is recorded, not fatal
            out[mod] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        out["git"] = commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        out["git"] = None
    return out


def command_line() -> str:
    return "python " + shlex.join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:])


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def header_md(title: str, env: Dict[str, Any]) -> List[str]:
    hw, ver = env["hardware"], env["versions"]
    ram = f"{hw['ram_bytes'] / 2**30:.1f} GiB" if hw.get("ram_bytes") else "?"
    load = ", ".join(f"{x:.2f}" for x in hw["loadavg"]) if hw.get("loadavg") else "?"
    return [
        f"# {title}",
        "",
        f"- Date: {env['date']}",
        f"- Command: `{env['command']}`",
        f"- Hardware: {hw['cpu']}, {hw['logical_cpus']} logical CPUs ({hw['usable_cpus']} usable), {ram} RAM; "
        f"{hw['os']}; load average at start {load}",
        f"- Threads: {env['threads_label']}",
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in ver.items()),
        "",
    ]


def _fmt(x: Optional[float], digits: int = 2) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


# =================================================================== main comparison


def run_comparison(args: argparse.Namespace) -> Dict[str, Any]:
    size = corpus_mod.parse_size(args.size)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    manifest = corpus_mod.build_corpus(size, args.seed, Path(args.cache))
    paths = manifest["paths"]
    manifest["bytes"]
    sample_bytes = int(args.reference_sample_mb * MB)
    sample = None if args.no_reference else sample_file(manifest, sample_bytes)
    ref_paths = [sample] if sample else paths
    sampled = sample is not None
    warm_cache(paths + ([sample] if sample else []))
    T, R, n = args.threads, args.repeat, args.n

    res: Dict[str, Any] = {
        "corpus": {k: v for k, v in manifest.items() if k != "paths"},
        "n": n,
        "modes": modes,
        "reference_sampled": sampled,
    }
    res["read"] = measure("plain pyarrow read", {"kind": "read", "paths": paths}, T, R)
    res["zipcal"] = {}
    res["zipcal_sample"] = {}
    res["reference"] = {}
    for mode in modes:
        res["zipcal"][mode] = measure(f"zipcal {mode}", {"kind": "zipcal", "paths": paths, "mode": mode, "n": n}, T, R)
    if not args.no_reference:
        for mode in modes:
            if sampled:
                res["zipcal_sample"][mode] = measure(
                    f"zipcal {mode} on the reference sample",
                    {"kind": "zipcal", "paths": ref_paths, "mode": mode, "n": n},
                    T,
                    R,
                )
            res["reference"][mode] = measure(
                f"Python reference {mode}" + (" (sample)" if sampled else ""),
                {"kind": "reference", "paths": ref_paths, "mode": mode, "n": n, "greedy": args.reference_greedy},
                T,
                R,
            )
        bpe = [m for m in modes if m != "words"]
        if bpe:
            res["encode"] = measure(
                f"tokenizers encode_batch {bpe[0]}", {"kind": "encode", "paths": ref_paths, "mode": bpe[0]}, T, R
            )
            res["encode"]["mode"] = bpe[0]
    return res


def comparison_md(res: Dict[str, Any], env: Dict[str, Any]) -> str:
    c = res["corpus"]
    total = c["bytes"]
    lines = header_md(f"zipcal selection speed: {c['bytes'] / MB:.0f} MB corpus", env)
    lines += [
        f"Corpus: `benches/corpus.py --size {corpus_mod.size_label(c['size'])} --seed {c['seed']}` "
        f"(version {c['version']}): {c['bytes'] / MB:.1f} MB of text in {c['rows']:,} documents, "
        f"{len(c['files'])} Parquet shard(s); n = {res['n']}. All files were in the page cache; "
        "every measurement ran in its own process (peak RSS = that process's VmHWM), "
        "with the modules it uses imported before its timer (and `OPENBLAS_NUM_THREADS=1`: nothing "
        "measured uses BLAS, whose idle threads would otherwise spin beside it for about 0.1 s).",
        "",
        "| measurement | mode | text MB | seconds | CPU s | MB/s | Mtokens/s | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    rd = res["read"]
    lines.append(
        f"| (d) plain pyarrow read of the text column | – | {rd['bytes'] / MB:.1f} | {rd['seconds']:.2f} | "
        f"{rd['cpu_seconds']:.2f} | "
        f"{rd['bytes'] / MB / rd['seconds']:,.1f} | – | {rd['peak_rss'] / MIB:,.0f} |"
    )
    for mode, z in res["zipcal"].items():
        lines.append(
            f"| (a) zipcal.select end to end | {mode} | {z['bytes'] / MB:.1f} | {z['seconds']:.2f} | "
            f"{z['cpu_seconds']:.2f} | "
            f"{z['bytes'] / MB / z['seconds']:,.1f} | {z['pool_tokens'] / 1e6 / z['seconds']:,.2f} | "
            f"{z['peak_rss'] / MIB:,.0f} |"
        )
    for mode, z in res["zipcal_sample"].items():
        lines.append(
            f"| (a') zipcal.select on the reference's sample | {mode} | {z['bytes'] / MB:.1f} | "
            f"{z['seconds']:.2f} | {z['cpu_seconds']:.2f} | {z['bytes'] / MB / z['seconds']:,.1f} | "
            f"{z['pool_tokens'] / 1e6 / z['seconds']:,.2f} | {z['peak_rss'] / MIB:,.0f} |"
        )
    for mode, r in res["reference"].items():
        lines.append(
            f"| (b) Python reference, measured | {mode} | {r['bytes'] / MB:.1f} | {r['seconds']:.2f} | "
            f"{r['cpu_seconds']:.2f} | "
            f"{r['bytes'] / MB / r['seconds']:,.1f} | {r['typed_tokens'] / 1e6 / r['seconds']:,.2f} | "
            f"{r['peak_rss'] / MIB:,.0f} |"
        )
        if res["reference_sampled"]:
            est = r["seconds"] * total / r["bytes"]
            cpu_est = r["cpu_seconds"] * total / r["bytes"]
            lines.append(
                f"| (b) Python reference, extrapolated linearly | {mode} | {total / MB:.1f} | "
                f"~{est:,.1f} | ~{cpu_est:,.1f} | {total / MB / est:,.1f} | – | – |"
            )
    if "encode" in res:
        e = res["encode"]
        lines.append(
            f"| (c) tokenizers `encode_batch` alone | {e['mode']} | {e['bytes'] / MB:.1f} | "
            f"{e['seconds']:.2f} | {e['cpu_seconds']:.2f} | {e['bytes'] / MB / e['seconds']:,.1f} | "
            f"{e['tokens'] / 1e6 / e['seconds']:,.2f} | {e['peak_rss'] / MIB:,.0f} |"
        )
    lines += [
        "",
        "CPU s = user + system CPU time of the measured call, all threads (less sensitive to other load "
        "on the machine than wall time; wall time is what the MB/s and ratios use).",
        "Tokens: zipcal and the reference count typed tokens (`sel.stats['pool_tokens']`: tokens that map "
        "to a type; whitespace-only and special tokens excluded); `encode_batch` counts every token id.",
    ]
    if res["reference_sampled"]:
        r0 = next(iter(res["reference"].values()), None)
        if r0:
            lines.append(
                f"The reference ran on the corpus's first {r0['rows']:,} documents "
                f"({r0['bytes'] / MB:.1f} MB); its full-corpus time is that time scaled by "
                f"{total / r0['bytes']:.2f} (linear extrapolation). `encode_batch` ran on the same sample."
            )
    lines += [
        "",
        "## Ratios (throughput in MB/s; > 1 means zipcal is faster)",
        "",
        "| mode | zipcal MB/s | reference MB/s | zipcal / reference | zipcal / reference, same sample "
        "| encode_batch MB/s | zipcal / encode_batch | zipcal / plain read |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    read_tp = rd["bytes"] / MB / rd["seconds"]
    enc_tp = res["encode"]["bytes"] / MB / res["encode"]["seconds"] if "encode" in res else None
    for mode, z in res["zipcal"].items():
        ztp = z["bytes"] / MB / z["seconds"]
        r = res["reference"].get(mode)
        rtp = r["bytes"] / MB / r["seconds"] if r else None
        zs = res["zipcal_sample"].get(mode)
        same = (r["seconds"] / zs["seconds"]) if (r and zs) else (rtp and ztp / rtp)
        e = enc_tp if mode != "words" else None
        lines.append(
            f"| {mode} | {ztp:,.1f} | {_fmt(rtp, 1)} | {_fmt(ztp / rtp if rtp else None)} | "
            f"{_fmt(same)} | {_fmt(e, 1)} | {_fmt(ztp / e if e else None)} | {ztp / read_tp:.3f} |"
        )
    lines += [
        "",
        "## Where the time goes",
        "",
        "| run | mode | total s | ingest s | greedy s | tokenizer setup s | other s | candidates | types |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, group in (("zipcal", res["zipcal"]), ("zipcal (sample)", res["zipcal_sample"])):
        for mode, z in group.items():
            other = z["seconds"] - z["ingest_seconds"] - z["select_seconds"] - (z["tokenizer_setup_seconds"] or 0)
            lines.append(
                f"| {label} | {mode} | {z['seconds']:.2f} | {z['ingest_seconds']:.2f} | "
                f"{z['select_seconds']:.3f} | {_fmt(z['tokenizer_setup_seconds'])} | {other:.2f} | "
                f"{z['candidates']:,} | {z['types_available']:,} |"
            )
    for mode, r in res["reference"].items():
        s = r["stage_seconds"]
        stages = ", ".join(f"{k} {v:.2f}" for k, v in s.items() if k != "total")
        lines.append(
            f"| reference ({r['greedy']} greedy) | {mode} | {s['total']:.2f} | {stages} | | | | "
            f"{r['candidates']:,} | {r['types_available']:,} |"
        )
    if res["reference"]:
        lines += [
            "",
            "## Agreement of the selections (same text)",
            "",
            "| mode | zipcal picks | reference picks | common | same order |",
            "|---|---:|---:|---:|---|",
        ]
        for mode, r in res["reference"].items():
            z = res["zipcal_sample"].get(mode) or res["zipcal"][mode]
            common = len(set(z["picked_rows"]) & set(r["picked_rows"]))
            lines.append(
                f"| {mode} | {len(z['picked_rows'])} | {len(r['picked_rows'])} | {common} | "
                f"{'yes' if z['picked_rows'] == r['picked_rows'] else 'no'} |"
            )
        if "words" in res["reference"]:
            lines += [
                "",
                "In `words` mode the two segment differently (zipcal: Unicode UAX #29 words; reference: "
                "`\\w+` on lowercased text), so only partial agreement is expected there.",
            ]
    lines.append("")
    return "\n".join(lines)


# =================================================================== scaling


def run_scaling(args: argparse.Namespace) -> Dict[str, Any]:
    sizes = [corpus_mod.parse_size(s) for s in args.scaling.split(",") if s.strip()]
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    rows = []
    for size in sizes:
        manifest = corpus_mod.build_corpus(size, args.seed, Path(args.cache))
        warm_cache(manifest["paths"])
        for mode in modes:
            try:
                z = measure(
                    f"zipcal {mode} @ {corpus_mod.size_label(size)}",
                    {"kind": "zipcal", "paths": manifest["paths"], "mode": mode, "n": args.n},
                    args.threads,
                    args.repeat,
                )
            except RuntimeError as e:  # record it and go on with the other sizes
                log(f"  failed: {e}")
                z = {"error": str(e)}
            z.pop("picked_rows", None)
            rows.append(
                {"size": size, "mode": mode, "corpus_bytes": manifest["bytes"], "documents": manifest["rows"], **z}
            )
    return {"n": args.n, "modes": modes, "sizes": sizes, "runs": rows}


def scaling_md(res: Dict[str, Any], env: Dict[str, Any]) -> str:
    lines = header_md("zipcal selection: time and memory against corpus size", env)
    lines += [
        "zipcal only, `zipcal.select(parquet_paths, n=%d, tokenizer=mode)` end to end, each run in a fresh "
        "process, files in the page cache. Corpora from `benches/corpus.py` (seed %d)." % (res["n"], env["seed"]),
        "",
        "| mode | corpus MB | documents | seconds | CPU s | MB/s | Mtokens/s | s per 100 MB | peak RSS MiB | "
        "RSS above baseline MiB | types | distinct chunks |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in res["runs"]:
        if "error" in r:
            lines.append(
                f"| {r['mode']} | {r['corpus_bytes'] / MB:,.0f} | {r['documents']:,} | failed: {r['error']} |||||||||"
            )
            continue
        lines.append(
            f"| {r['mode']} | {r['bytes'] / MB:,.0f} | {r['documents']:,} | {r['seconds']:.2f} | "
            f"{r['cpu_seconds']:.2f} | "
            f"{r['bytes'] / MB / r['seconds']:,.1f} | {r['pool_tokens'] / 1e6 / r['seconds']:,.2f} | "
            f"{r['seconds'] / (r['bytes'] / 1e8):.2f} | {r['peak_rss'] / MIB:,.0f} | "
            f"{(r['peak_rss'] - r['baseline_rss']) / MIB:,.0f} | {r['types_available']:,} | "
            f"{_fmt(r.get('distinct_chunks_cached'), 0)} |"
        )
    lines += ["", "Linearity: constant *s per 100 MB* across sizes means time grows linearly with the corpus.", ""]
    return "\n".join(lines)


# =================================================================== entry point


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", default="200M", help="corpus size (text bytes): 30M, 200M, 1G ... (default 200M)")
    ap.add_argument("--seed", type=int, default=0, help="corpus seed (default 0)")
    ap.add_argument(
        "--threads", type=int, default=None, help="threads for zipcal, tokenizers and pyarrow (default: all CPUs)"
    )
    ap.add_argument("--modes", default="words,gpt2", help="comma-separated: words, gpt2, or tokenizer.json paths")
    ap.add_argument("--n", type=int, default=128, help="samples to select (default 128)")
    ap.add_argument(
        "--reference-sample-mb",
        type=float,
        default=20.0,
        help="run the Python reference on the first this-many MB and extrapolate (default 20)",
    )
    ap.add_argument(
        "--reference-greedy",
        choices=("lazy", "plain"),
        default="lazy",
        help="the reference's greedy: lazy (heap of stale bounds) or plain (all gains every round)",
    )
    ap.add_argument("--no-reference", action="store_true", help="skip (b) and (c)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; the median is reported")
    ap.add_argument("--scaling", default=None, help="e.g. 100M,200M,500M,1G: zipcal only, at several sizes")
    ap.add_argument("--cache", default=str(corpus_mod.DEFAULT_CACHE), help="corpus cache folder (bench-data/)")
    ap.add_argument(
        "--out",
        default=None,
        help="Markdown output (default benches/results/selection-<size>.md or scaling-<sizes>.md); "
        "JSON goes next to it",
    )
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker is not None:
        return worker_main(args.worker)
    if args.reference_sample_mb < 20 and not args.no_reference:
        log("note: --reference-sample-mb below 20 MB; extrapolations from small samples are less reliable")

    env = {
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command_line(),
        "hardware": hardware(),
        "versions": versions(),
        "threads_label": str(args.threads) if args.threads else f"default (all {os.cpu_count()} CPUs)",
        "seed": args.seed,
    }
    t0 = time.perf_counter()
    if args.scaling:
        res = run_scaling(args)
        md = scaling_md(res, env)
        labels = args.scaling.replace(",", "-").replace(" ", "")
        out = Path(args.out) if args.out else HERE / "results" / f"scaling-{labels}.md"
    else:
        res = run_comparison(args)
        md = comparison_md(res, env)
        out = (
            Path(args.out)
            if args.out
            else HERE / "results" / f"selection-{corpus_mod.size_label(corpus_mod.parse_size(args.size))}.md"
        )
    env["hardware"]["loadavg_end"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    env["bench_seconds"] = round(time.perf_counter() - t0, 1)
    write_atomic(out, md)
    write_atomic(out.with_suffix(".json"), json.dumps({"environment": env, "results": res}, indent=1) + "\n")
    log(f"wrote {out} and {out.with_suffix('.json')} ({env['bench_seconds']}s)")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
