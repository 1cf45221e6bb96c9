"""`ofer-live video IN1 IN2 ... -o OUTDIR/`: many videos at once.

- Each input gets ``OUTDIR/<name>.avi`` (annotated, the crash-safe MJPEG writer) and ``OUTDIR/<name>.jsonl``.
  Both are written as ``<name>.partial.avi`` / ``.partial.jsonl`` and renamed when the input is finished; the
  JSONL's last line is then ``{"end": true, "input": ..., "frames": N}``.
- A rerun skips the inputs whose outputs are finished, so a run that was cut off is simply started again. A
  ``.partial`` file is this command's own and is redone; an existing output that is not finished (not ours) is
  refused without ``--overwrite``.
- ``--jobs N`` runs N inputs at once in N processes (ONNX Runtime threads split between them).
- ``--shard K/N`` takes inputs K, K+N, ... (1-based) of the list as given, for array jobs on many machines.
- A bad input is reported and skipped; the others finish; the exit code is 2 when any failed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ofer_live.config import AppConfig
from ofer_live.errors import UserError

PARTIAL = ".partial"
VIDEO_EXT = ".avi"


@dataclass(frozen=True)
class Job:
    """One input and where its results go."""

    input: str
    video: Path
    jsonl: Path

    @property
    def name(self) -> str:
        return self.video.stem


def parse_shard(text: str | None) -> tuple[int, int]:
    """'K/N' -> (K, N) with 1 <= K <= N; None -> (1, 1)."""
    if text is None:
        return 1, 1
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise UserError(f"--shard must look like K/N, e.g. 2/8, got {text!r}") from None
    if not 1 <= k <= n:
        raise UserError(f"--shard {text}: K must be between 1 and N")
    return k, n


def output_stem(spec: str) -> str:
    """The name an input's outputs get: the file name without extension (demo:N -> demo_N)."""
    path = Path(spec)
    return path.stem if path.suffix else spec.replace(":", "_").replace("/", "_")


def plan(inputs: list[str], out_dir: Path, shard: tuple[int, int]) -> list[Job]:
    """Inputs -> this shard's jobs; UserError when two inputs would write the same files."""
    jobs, seen = [], {}
    for spec in inputs:
        stem = output_stem(spec)
        if stem in seen:
            raise UserError(
                f"{seen[stem]} and {spec} would both write {stem}{VIDEO_EXT}; rename one, or run them "
                "into separate folders"
            )
        seen[stem] = spec
        jobs.append(Job(spec, out_dir / f"{stem}{VIDEO_EXT}", out_dir / f"{stem}.jsonl"))
    k, n = shard
    return jobs[k - 1 :: n]


def is_finished(job: Job) -> bool:
    """True when the job's video exists and its JSONL ends with the end line of this input."""
    if not (job.video.is_file() and job.jsonl.is_file()):
        return False
    try:
        with open(job.jsonl, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096))
            last = handle.read().decode("utf-8", errors="replace").strip().splitlines()[-1:]
        record = json.loads(last[0]) if last else {}
    except (OSError, json.JSONDecodeError):
        return False
    return bool(record.get("end")) and record.get("input") == job.input


def _partial(path: Path) -> Path:
    """x.avi -> x.partial.avi (the writers pick the format by the last extension)."""
    return path.with_name(f"{path.stem}{PARTIAL}{path.suffix}")


def process(job: Job, config: AppConfig, options: dict[str, Any]) -> dict[str, Any]:
    """Annotate one input into ``.partial`` files, then rename them; -> a summary row (status ok | failed)."""
    from ofer_live.commands.video import annotate_video

    start = time.time()
    video, jsonl = _partial(job.video), _partial(job.jsonl)
    try:
        stats = annotate_video(
            job.input, video, jsonl, config, progress=False, end_record={"end": True, "input": job.input}, **options
        )
    except UserError as exc:
        return {"input": job.input, "status": "failed", "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - one bad input must not stop the others
        return {"input": job.input, "status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    os.replace(video, job.video)
    os.replace(jsonl, job.jsonl)
    return {
        "input": job.input,
        "status": "ok",
        "frames": stats["frames"],
        "faces_pct": 100.0 * stats["with_face"] / stats["frames"],
        "ms_per_frame": stats["ms_per_frame"],
        "seconds": time.time() - start,
        "video": str(job.video),
    }


def run_batch(args: argparse.Namespace, config: AppConfig, camera: dict[str, Any] | None = None) -> int:
    """The batch mode of ``ofer-live video`` (see module docstring)."""
    from ofer_live.io.paths import check_output_dir

    if args.jsonl is not None:
        raise UserError("--jsonl is for one input; with several, each gets OUTDIR/<name>.jsonl")
    if args.virtual_camera:
        raise UserError("--virtual-camera takes one input")
    if args.jobs < 1:
        raise UserError(f"--jobs must be at least 1, got {args.jobs}")
    out_dir = check_output_dir(Path(args.output))
    jobs = plan(list(args.inputs), out_dir, parse_shard(args.shard))
    todo, rows = [], []
    for job in jobs:
        if is_finished(job) and not args.overwrite:
            rows.append({"input": job.input, "status": "skipped", "reason": "finished earlier"})
        elif (job.video.exists() or job.jsonl.exists()) and not args.overwrite:
            rows.append(
                _report(
                    {
                        "input": job.input,
                        "status": "failed",
                        "reason": f"{job.video.name} or {job.jsonl.name} exists and was not finished by "
                        "this command; pass --overwrite to replace it",
                    }
                )
            )
        else:
            todo.append(job)
    options = {"max_frames": args.max_frames, "no_overlay": args.no_overlay, **(camera or {})}
    if args.jobs > 1:  # the processes share the cores: one frame at a time each, the threads split between them
        runtime = replace(config.runtime, frames_in_flight=1)
        if runtime.intra_op_threads == 0:
            runtime = replace(runtime, intra_op_threads=max(1, (os.cpu_count() or 2) // args.jobs))
        config = replace(config, runtime=runtime)
    shard = f" (shard {args.shard})" if args.shard else ""
    print(
        f"{len(jobs)} input(s){shard}: {len(todo)} to annotate into {out_dir}, {len(jobs) - len(todo)} not",
        file=sys.stderr,
    )
    if args.jobs == 1 or len(todo) <= 1:
        for job in todo:
            rows.append(_report(process(job, config, options)))
    else:
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
            futures = [pool.submit(process, job, config, options) for job in todo]
            for future in as_completed(futures):
                rows.append(_report(future.result()))
    order = {job.input: i for i, job in enumerate(jobs)}
    rows.sort(key=lambda r: order.get(r["input"], len(order)))
    _print_table(rows)
    return 2 if any(r["status"] == "failed" for r in rows) else 0


def _report(row: dict[str, Any]) -> dict[str, Any]:
    if row["status"] == "failed":
        reason = row["reason"] if row["input"] in row["reason"] else f"{row['input']}: {row['reason']}"
        print(f"ofer-live: {reason}", file=sys.stderr)
    else:
        print(f"done: {row['input']} ({row['frames']} frames)", file=sys.stderr)
    return row


def _print_table(rows: list[dict[str, Any]]) -> None:
    width = max([len("input")] + [len(r["input"]) for r in rows])
    print(f"{'input':<{width}}  {'status':<8} {'frames':>7} {'faces':>6} {'ms/frame':>9}  note")
    for r in rows:
        if r["status"] == "ok":
            print(
                f"{r['input']:<{width}}  {'ok':<8} {r['frames']:>7} {r['faces_pct']:>5.0f}% "
                f"{r['ms_per_frame']:>9.1f}  {r['video']}"
            )
        else:
            print(f"{r['input']:<{width}}  {r['status']:<8} {'':>7} {'':>6} {'':>9}  {r['reason']}")
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "skipped", "failed")}
    print(f"{counts['ok']} annotated, {counts['skipped']} skipped (finished earlier), {counts['failed']} failed")
