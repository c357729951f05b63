"""Static checks of the Dockerfile (no Docker here to build it): multi-stage, a
distroless final stage without root, both binaries where the chart runs them."""

from __future__ import annotations

import sys
from pathlib import Path

from dockerfile_parse import DockerfileParser

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    p = DockerfileParser(path=str(ROOT / "Dockerfile"))
    problems = []
    froms = [i for i in p.structure if i["instruction"] == "FROM"]
    if len(froms) < 2:
        problems.append("not multi-stage")
    final = p.baseimage
    if not final.startswith("gcr.io/distroless/"):
        problems.append(f"final image {final} is not distroless")
    last_from = froms[-1]["startline"] if froms else 0
    tail = [i for i in p.structure if i["startline"] > last_from]
    users = [i["value"] for i in tail if i["instruction"] == "USER"]
    if not users or users[-1].split(":")[0] in ("0", "root"):
        problems.append("final stage does not switch to a non-root USER")
    copies = " ".join(i["value"] for i in tail if i["instruction"] == "COPY")
    for b in ("ferrolb-controller", "ferrolb-speaker"):
        if f"/out/{b}" not in copies:
            problems.append(f"final stage does not copy {b}")
        chart = (ROOT / "config/helm/ferrolb/templates").glob("*.yaml")
        if not any(f'"/{b}"' in f.read_text() for f in chart):
            problems.append(f"the chart does not run /{b}")
    runs = " ".join(i["value"] for i in p.structure if i["instruction"] == "RUN")
    if "--locked" not in runs:
        problems.append("cargo build without --locked")
    for msg in problems:
        print(f"FAIL Dockerfile: {msg}")
    if not problems:
        print(f"ok   Dockerfile: {len(froms)} stages, final {final}, user {users[-1]}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
