"""What the benchmark scripts share: waiting for the API, driving it with wrk, writing results."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx

RESULTS = Path(__file__).resolve().parent / "results.md"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wait_healthy(base_url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 60) -> None:
    """Until ``/health`` answers 200; stops early if the server ``process`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise SystemExit("luffy serve exited before answering")
        try:
            if httpx.get(base_url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the API did not become healthy")


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


def run_wrk(url: str, duration: int, connections: int) -> tuple[float, float, float, int]:
    """requests/s, p50 ms, p99 ms and errors (non-2xx/3xx replies plus socket errors) of one wrk run."""
    threads = min(connections, os.cpu_count() or 1)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _milliseconds(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _milliseconds(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors_match = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = int(errors_match.group(1)) if errors_match else 0
    if socket_errors:
        errors += sum(int(value) for value in socket_errors.groups())
    return rps, p50, p99, errors


def write_block(name: str, section: str) -> None:
    """Put ``section`` between ``<!-- name: begin/end -->`` in ``bench/results.md``, keeping the other blocks."""
    begin, end = f"<!-- {name}: begin -->", f"<!-- {name}: end -->"
    text = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmark results\n"
    block = f"{begin}\n{section.rstrip()}\n{end}"
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(text, encoding="utf-8")
