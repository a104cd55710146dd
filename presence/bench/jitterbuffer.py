"""``presence bench jitterbuffer``: the browser's adaptive jitter buffer against arrival traces.

The algorithm is plain JavaScript with time as an argument (presence/web/jitterbuffer.js), so
it runs under Node without a browser; this suite runs the trace benchmark and reports, per
trace, late-loss rate and added delay against the oracle fixed delay.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]  # the checkout (or site-packages); --md paths are relative to it
SCRIPT = Path(__file__).resolve().parents[1] / "testing" / "jitter" / "bench_jitterbuffer.js"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="presence bench jitterbuffer", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="accepted for uniformity; the traces are small")
    parser.add_argument("--json", help="write results as JSON here")
    parser.add_argument("--md", default="docs/benchmarks/jitterbuffer.md")
    args = parser.parse_args(argv)
    node = shutil.which("node")
    if node is None:
        raise SystemExit("presence bench jitterbuffer needs Node.js: apt-get install nodejs")
    if not SCRIPT.exists():
        raise SystemExit(f"{SCRIPT} is missing: the package was installed without its data files")
    command = [node, str(SCRIPT)]
    if args.md and not args.quick:
        command += ["--md", args.md]
    if args.json:
        command += ["--json", args.json]
    return subprocess.run(command, cwd=REPO, check=False).returncode
