"""``make bench [BENCH_SIZE=small]``: run the scenarios, write bench/results/latest.json and
bench/results/latest.md, and the table between the bench markers of docs/performance.md. Not
part of ``make test``.

``python -m bench.run --only tenancy|http|scale|search|live|notify|stripe``: one group of
scenarios; prints its table and leaves latest.* and docs/performance.md alone. ``--size large``
(``--only scale``): 10,000 tenants, not part of the default run."""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from bench import http, live, notify, scale, search, stripe, tenancy

RESULTS = Path(__file__).parent / "results"
# The page whose table (between the bench markers) a full run rewrites.
PERFORMANCE_PAGE = Path(__file__).parent.parent / "docs" / "performance.md"


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", choices=["small", "full", "large"], default="full")
    parser.add_argument(
        "--only",
        choices=["tenancy", "http", "scale", "search", "live", "notify", "stripe"],
        default=None,
    )
    args = parser.parse_args()
    if args.size == "large" and args.only != "scale":
        parser.error("--size large is for --only scale (10,000 tenants)")
    t0 = time.perf_counter()
    parser_only = args.only
    results = {}
    took: dict[str, float] = {}

    def timed(group: str, run):
        t = time.perf_counter()
        out = run()
        took[group] = round(time.perf_counter() - t, 1)
        return out

    # HTTP scenarios first: creating thousands of tenant tables for the tenancy scenario leaves
    # PostgreSQL's autovacuum busy for minutes afterwards, which would slow everything after it.
    if parser_only in (None, "http"):
        results.update(timed("http", lambda: http.main(args.size)))
    if parser_only in (None, "scale"):
        results["scale"] = timed("scale", lambda: scale.main(args.size))
    for group, module in (
        ("search", search),
        ("live", live),
        ("notify", notify),
        ("stripe", stripe),
    ):
        if parser_only in (None, group):
            results.update(timed(group, lambda m=module: m.main(args.size)))
    if parser_only in (None, "tenancy"):
        results = {"tenancy": timed("tenancy", lambda: tenancy.main(args.size)), **results}
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "size": args.size,
        "seconds": round(time.perf_counter() - t0, 1),
        "seconds_by_group": took,
    }
    lines = [
        f"Measured {meta['date']} on {meta['machine']} (size {args.size}, {meta['seconds']} s: "
        + ", ".join(f"{g} {t} s" for g, t in took.items())
        + ").",
        "",
        "| scenario | metric | value |",
        "|---|---|---|",
    ]
    for scenario, values in results.items():
        if not isinstance(values, dict):
            lines.insert(1, f"Load generator: {values}.")
            continue
        for key, value in values.items():
            lines.append(f"| {scenario} | {key} | {value} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if parser_only:
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps({"meta": meta, **results}, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(table)
    text = PERFORMANCE_PAGE.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        PERFORMANCE_PAGE.write_text(head + start + "\n" + table + rest[rest.index(end) :])


if __name__ == "__main__":
    main()
