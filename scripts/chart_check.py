"""Checks the Helm chart with a real Helm (Helm v4's Go SDK through helm-python-sdk):
lint, render for several value sets, validate every object against the Kubernetes
schemas and our CRDs, RBAC against docs/rbac.md, flags against the binaries' clap
definitions, and config/manifests/ against the chart. Run by scripts/chart-check.
"""

from __future__ import annotations

import copy
import filecmp
import re
import sys
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "config/helm/ferrolb"
MANIFESTS = ROOT / "config/manifests"
NAMESPACE = "ferrolb-system"
KUBE_VERSION = "1.33.0"

# Value sets every check runs on. The keys name them in messages.
SCENARIOS: dict[str, dict] = {
    "default": {},
    "layer2-only": {"speaker": {"mode": "layer2"}},
    "bgp-only": {"speaker": {"mode": "bgp", "memberlist": {"enabled": False}}},
    "monitoring": {
        "prometheus": {
            "podMonitor": {"enabled": True, "additionalLabels": {"release": "prom"}},
            "serviceMonitor": {"enabled": True},
        }
    },
    "memberlist-own-secret": {
        "speaker": {"memberlist": {"enabled": True, "port": 17946, "secretName": "my-key"}}
    },
    "single-controller-json-logs": {
        "controller": {"replicas": 1},
        "log": {"level": "debug", "format": "json"},
        "loadBalancerClass": "example.com/lb",
        "speaker": {"extraCapabilities": ["NET_ADMIN"]},
    },
    "controller-only": {"speaker": {"enabled": False}},
}

# Values the schema must refuse.
BAD_VALUES: dict[str, dict] = {
    "unknown mode": {"speaker": {"mode": "arp"}},
    "misspelt key": {"speaker": {"memberList": {"enabled": True}}},
    "port out of range": {"speaker": {"memberlist": {"port": 70000}}},
    "bad log format": {"log": {"format": "xml"}},
}

# The plain manifests: what a user without Helm applies. The memberlist Secret is
# named rather than generated so that the file is the same on every render.
PLAIN_VALUES = {"speaker": {"memberlist": {"secretName": "ferrolb-memberlist"}}}
PLAIN_FILE = MANIFESTS / "ferrolb.yaml"

failures: list[str] = []


def fail(msg: str) -> None:
    failures.append(msg)
    print(f"FAIL {msg}")


def crd_schemas() -> dict[tuple[str, str], dict]:
    """(apiVersion, kind) -> openAPIV3Schema of each CRD version we serve."""
    out = {}
    for f in sorted((ROOT / "config/crds").glob("*.yaml")):
        for crd in yaml.safe_load_all(f.read_text()):
            if not crd:
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for v in crd["spec"]["versions"]:
                out[(f"{group}/{v['name']}", kind)] = v["schema"]["openAPIV3Schema"]
    return out


def validate_object(obj: dict, crds: dict, where: str) -> None:
    key = (obj.get("apiVersion"), obj.get("kind"))
    name = f"{where}: {obj.get('kind')} {obj.get('metadata', {}).get('name')}"
    if key in crds:
        # The API server adds metadata's schema; ours covers spec and status.
        body = {k: v for k, v in obj.items() if k != "metadata"}
        errs = list(jsonschema.Draft7Validator(crds[key]).iter_errors(body))
        for e in errs:
            fail(f"{name}: {'.'.join(map(str, e.path))}: {e.message}")
        return
    if key[0] == "monitoring.coreos.com/v1":
        # kubernetes-validate has no Prometheus Operator schemas; check the fields
        # the operator needs to find the pods.
        spec = obj.get("spec", {})
        eps = spec.get("podMetricsEndpoints") or spec.get("endpoints")
        if not spec.get("selector", {}).get("matchLabels") or not eps:
            fail(f"{name}: needs spec.selector.matchLabels and endpoints")
        return
    try:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        fail(f"{name}: {'.'.join(map(str, e.path))}: {e.message}")
    except kubernetes_validate.SchemaNotFoundError as e:
        fail(f"{name}: no Kubernetes {KUBE_VERSION} schema: {e}")


def render(values: dict) -> tuple[list[dict], str]:
    chart = helm.Chart.load(str(CHART))
    out = chart.render(values, name="ferrolb", namespace=NAMESPACE, is_install=True)
    docs, notes = [], ""
    for path in sorted(out):
        if path.endswith("NOTES.txt"):
            notes = out[path]
            continue
        docs += [d for d in yaml.safe_load_all(out[path]) if d]
    return docs, notes


def flags_of(main_rs: Path) -> set[str]:
    """The long flags clap derives from the `Args` fields of a main.rs."""
    src = main_rs.read_text()
    struct = src[src.index("struct Args") :]
    struct = struct[: struct.index("\n}")]
    return {"--" + m.replace("_", "-") for m in re.findall(r"^\s+(\w+):", struct, re.M)}


def container(docs: list[dict], kind: str) -> dict | None:
    for d in docs:
        if d["kind"] == kind:
            return d["spec"]["template"]["spec"]["containers"][0]
    return None


def check_containers(name: str, docs: list[dict], values: dict) -> None:
    for kind, main in (("Deployment", "controller"), ("DaemonSet", "speaker")):
        c = container(docs, kind)
        if c is None:
            continue
        known = flags_of(ROOT / main / "src/main.rs")
        for a in c.get("args", []):
            if a.split("=")[0] not in known:
                fail(f"{name}: {main} gets {a}, which ferrolb-{main} does not accept")
        sc = c.get("securityContext", {})
        if sc.get("privileged") or sc.get("allowPrivilegeEscalation", True):
            fail(f"{name}: {main} may be privileged or escalate")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            fail(f"{name}: {main} does not drop all capabilities")
    sp = container(docs, "DaemonSet")
    if sp is None:
        return
    mode = values.get("speaker", {}).get("mode", "both")
    want = ({"NET_RAW"} if mode != "bgp" else set()) | set(
        values.get("speaker", {}).get("extraCapabilities", [])
    )
    got = set(sp["securityContext"]["capabilities"].get("add", []))
    if got != want:
        fail(f"{name}: speaker capabilities {sorted(got)}, want {sorted(want)}")
    if not want and sp["securityContext"].get("runAsUser") == 0:
        fail(f"{name}: speaker runs as root with no capability to use")
    env = {e["name"] for e in sp.get("env", [])}
    ml = values.get("speaker", {}).get("memberlist", {}).get("enabled", True)
    has = {"FERROLB_MEMBERLIST_PORT", "FERROLB_MEMBERLIST_KEY"} <= env
    if has != ml:
        fail(f"{name}: memberlist env present={has} but enabled={ml}")


def rbac_rules(docs: list[dict]) -> set[tuple]:
    out = set()
    for d in docs:
        if d["kind"] not in ("ClusterRole", "Role"):
            continue
        binary = d["metadata"]["labels"]["app.kubernetes.io/component"]
        # A Role outside the release namespace is listed under its namespace.
        ns = d["metadata"].get("namespace", NAMESPACE)
        scope = "cluster" if d["kind"] == "ClusterRole" else ("namespace" if ns == NAMESPACE else ns)
        for r in d["rules"]:
            names = ",".join(r.get("resourceNames", [])) or "-"
            for g in r["apiGroups"]:
                for res in r["resources"]:
                    for v in r["verbs"]:
                        out.add((binary, scope, g or "core", res, names, v))
    return out


def documented_rbac() -> set[tuple]:
    """Rows of the table in docs/rbac.md: | binary | scope | group | resource | names | verbs | why |"""
    out = set()
    for line in (ROOT / "docs/rbac.md").read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) < 6 or cells[0] not in ("controller", "speaker"):
            continue
        binary, scope, group, resource, names, verbs = cells[:6]
        for v in verbs.split(","):
            out.add((binary, scope, group, resource, names, v.strip()))
    return out


def check_rbac(name: str, docs: list[dict], values: dict) -> None:
    got = rbac_rules(docs)
    want = {
        r
        for r in documented_rbac()
        if values.get(r[0], {}).get("enabled", True)
    }
    for r in sorted(got - want):
        fail(f"{name}: RBAC grants {r} which docs/rbac.md does not list")
    for r in sorted(want - got):
        fail(f"{name}: docs/rbac.md lists {r} which the chart does not grant")


def plain_manifests() -> str:
    docs, _ = render(PLAIN_VALUES)
    chart = helm.Chart.load(str(CHART))
    order = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
             "Service", "DaemonSet", "Deployment", "PodDisruptionBudget"]
    docs.sort(key=lambda d: (order.index(d["kind"]), d["metadata"]["name"]))
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": NAMESPACE,
            # The speaker uses hostNetwork and NET_RAW, which the baseline and
            # restricted Pod Security levels refuse.
            "labels": {f"pod-security.kubernetes.io/{m}": "privileged" for m in ("enforce", "audit", "warn")},
        },
    }
    parts = [
        "# Generated by `scripts/chart-check --fix` from config/helm/ferrolb with\n"
        f"# values {PLAIN_VALUES}. Do not edit.\n"
        "# Before applying, create the speakers' membership key (docs/install.md):\n"
        f"#   kubectl -n {NAMESPACE} create secret generic ferrolb-memberlist "
        "--from-literal=secretkey=\"$(head -c 64 /dev/urandom | base64 -w0)\"\n",
        yaml.safe_dump(namespace, sort_keys=False),
    ]
    for crd in sorted(chart.crds, key=lambda c: c["name"]):
        text = crd["data"] if isinstance(crd, dict) and "data" in crd else ""
        parts.append("\n".join(l for l in text.splitlines() if not l.startswith("#") and l != "---") + "\n")
    for d in docs:
        d["metadata"].get("labels", {}).pop("helm.sh/chart", None)
        d["metadata"].get("labels", {}).pop("app.kubernetes.io/managed-by", None)
        parts.append(yaml.safe_dump(d, sort_keys=False))
    return "---\n".join(parts)


def main() -> int:
    fix = "--fix" in sys.argv[1:]
    print(f"helm SDK {helm.helm_sdk_version()}, kubernetes-validate {kubernetes_validate.__version__ if hasattr(kubernetes_validate, '__version__') else '?'}, schemas {KUBE_VERSION}")

    # The chart ships the generated CRDs (crdgen writes config/crds/).
    for f in sorted((ROOT / "config/crds").glob("*.yaml")):
        copy_ = CHART / "crds" / f.name
        if not copy_.exists() or not filecmp.cmp(f, copy_, shallow=False):
            if fix:
                copy_.write_bytes(f.read_bytes())
            else:
                fail(f"{copy_.relative_to(ROOT)} differs from config/crds (run scripts/chart-check --fix)")
    extra = {p.name for p in (CHART / "crds").glob("*")} - {p.name for p in (ROOT / "config/crds").glob("*")}
    for e in sorted(extra):
        fail(f"config/helm/ferrolb/crds/{e} is not in config/crds")

    crds = crd_schemas()
    chart = helm.Chart.load(str(CHART))
    for crd in chart.crds:
        for d in yaml.safe_load_all(crd["data"]):
            if d:
                validate_object(d, crds, f"chart crds/{crd['name']}")

    for name, values in SCENARIOS.items():
        report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}")
        for m in report["messages"]:
            # Severity 1 is informational ("icon is recommended").
            if m["severity"] >= 2:
                fail(f"{name}: helm lint: {m['path']}: {m['error']}")
        for e in report.get("errors") or []:
            fail(f"{name}: helm lint: {e}")
        before = len(failures)
        docs, notes = render(values)
        for d in docs:
            validate_object(d, crds, name)
        check_containers(name, docs, values)
        check_rbac(name, docs, values)
        if "IPAddressPool" not in notes:
            fail(f"{name}: NOTES.txt does not say to create an IPAddressPool")
        if len(failures) == before:
            print(f"ok   {name}: lint clean, {len(docs)} objects valid")

    for name, values in BAD_VALUES.items():
        try:
            render(values)
            fail(f"values.schema.json accepts {name}: {values}")
        except helm.HelmError:
            print(f"ok   refused: {name}")
    try:
        render({"controller": {"enabled": False}, "speaker": {"enabled": False}})
        fail("nothing enabled renders")
    except helm.HelmError:
        print("ok   refused: nothing enabled")

    before = len(failures)
    for f in sorted((ROOT / "config/samples").glob("*.yaml")):
        for d in yaml.safe_load_all(f.read_text()):
            if d and d.get("apiVersion", "").startswith("ferrolb.io/"):
                validate_object(d, crds, f"config/samples/{f.name}")
    if len(failures) == before:
        print("ok   config/samples valid against the CRDs")

    plain = plain_manifests()
    for d in yaml.safe_load_all(plain):
        if d:
            validate_object(d, crds, PLAIN_FILE.name)
    if fix:
        MANIFESTS.mkdir(exist_ok=True)
        PLAIN_FILE.write_text(plain)
        print(f"wrote {PLAIN_FILE.relative_to(ROOT)}")
    elif not PLAIN_FILE.exists() or PLAIN_FILE.read_text() != plain:
        fail(f"{PLAIN_FILE.relative_to(ROOT)} is not what the chart renders (run scripts/chart-check --fix)")
    else:
        print(f"ok   {PLAIN_FILE.relative_to(ROOT)} in sync with the chart")

    # Not cargo's "N passed, N failed" form: scripts/test's closing line is the
    # one summary of a run.
    print(f"chart-check: {'OK' if not failures else f'{len(failures)} problem(s)'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
