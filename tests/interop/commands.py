"""Every grpcurl command a newcomer is told to paste must work when pasted.

Two sources, so the docs and the `dev` banner cannot drift from the binary again:

1. the `dev` banner: starts a real `atlas-grpc-gateway dev` process, captures what it
   prints, and runs each printed `grpcurl` line verbatim (`bash -c LINE`);
2. the Markdown docs (README.md, docs/*.md): every `grpcurl` command in a fenced code
   block (a `$ ` prompt and `\\` continuations are handled), with 127.0.0.1:50051
   pointed at the same dev process, and every `curl` command naming `$EMULATOR` (set
   to the emulator's URL); each block runs in order on a freshly reset emulator;
3. the README's tour shows every grpcurl line the banner prints, verbatim.

A line passes when grpcurl ran the RPC: exit 0, or an RPC error (grpcurl exits 64 + the
gRPC code). A usage error (exit 2, "Too many arguments", an unknown flag) or a failure to
reach the gateway fails it. A banner line annotated `# CODE_NAME` must end with that code.
A doc command shown with its output (a `$ ` prompt) must match that output's shape:
`ERROR: Code: X` and its detail types, or the JSON keys, or each listed line.

Usage: python commands.py (env: GATEWAY_BIN, GRPCURL; run by tests/interop/run.sh).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOC_ADDR = "127.0.0.1:50051"
CODES = [
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
]
# grpcurl prints codes in Go's CamelCase (`Code: InvalidArgument`).
CAMEL = {c.title().replace("_", ""): i for i, c in enumerate(CODES)}
CAMEL["Canceled"] = 1
USAGE = re.compile(r"Too many arguments|Usage:|flag provided but not defined|unknown flag",
                   re.IGNORECASE)
RPC_EXIT_OFFSET = 64  # grpcurl exits 64 + code when the RPC fails
PASSED = [0]


class Dev:
    """A running `atlas-grpc-gateway dev` and the banner it printed."""

    def __init__(self, binary: str):
        self.binary = binary
        # Port 0: the banner must show the port the gateway really bound, or the
        # commands below cannot reach it.
        self.proc = subprocess.Popen(
            [binary, "dev", "--listen", "127.0.0.1:0", "--metrics-listen", "off"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self.banner_done = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()
        if not self.banner_done.wait(60):
            self.stop()
            raise SystemExit("dev printed no complete banner within 60 s:\n" + self.output())
        self.banner = self.lines[:]
        bound = re.search(r"gateway on (127\.0\.0\.1:\d+),", self.output())
        if not bound or bound.group(1).endswith(":0"):
            self.stop()
            raise SystemExit("the banner names no bound gateway address:\n" + self.output())
        self.addr = bound.group(1)
        self._wait_serving()
        url = re.search(r"Atlas emulator on (http://\S+)", self.output())
        self.emulator = url.group(1) if url else None

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Ctrl-C to stop"):
                self.banner_done.set()
        self.banner_done.set()

    def _wait_serving(self) -> None:
        for _ in range(600):
            ok = subprocess.run([self.binary, "healthcheck", "--addr", self.addr],
                                capture_output=True).returncode == 0
            if ok:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise SystemExit("dev did not become SERVING:\n" + self.output())

    def output(self) -> str:
        return "\n".join(self.lines)

    def reset_emulator(self) -> None:
        if self.emulator:
            req = urllib.request.Request(self.emulator + "/__emulator/reset", method="POST")
            urllib.request.urlopen(req, timeout=5).read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run(line: str, extra: dict[str, str] | None = None) -> tuple[int, str]:
    env = dict(os.environ, **(extra or {}))
    grpcurl = pathlib.Path(os.environ.get("GRPCURL", "grpcurl"))
    if grpcurl.is_absolute():
        env["PATH"] = f"{grpcurl.parent}{os.pathsep}{env['PATH']}"
    p = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env,
                       timeout=30)
    return p.returncode, p.stdout + p.stderr


def ran_the_rpc(rc: int, out: str) -> str | None:
    """None when grpcurl ran the RPC (success or RPC error), else what went wrong."""
    if rc == 2 or USAGE.search(out):
        return f"usage error (exit {rc})"
    if rc != 0 and not RPC_EXIT_OFFSET <= rc < RPC_EXIT_OFFSET + len(CODES):
        return f"grpcurl failed before any RPC (exit {rc})"
    return None


def expected_code(comment: str) -> int | None:
    m = re.match(r"\s*([A-Z_]+)\b", comment)
    return CODES.index(m.group(1)) if m and m.group(1) in CODES else None


def check_banner(dev: Dev) -> list[str]:
    """Runs each grpcurl line of the banner; returns the failures."""
    lines = [l.strip() for l in dev.banner if l.strip().startswith("grpcurl ")]
    failures = []
    for line in lines:
        rc, out = run(line)
        problem = ran_the_rpc(rc, out)
        comment = line.split("#", 1)[1] if " #" in line else ""
        want = expected_code(comment)
        if problem is None and want is not None:
            got = rc - RPC_EXIT_OFFSET if rc else 0
            if got != want:
                problem = f"ended with {CODES[got] if got < len(CODES) else rc}, banner says {CODES[want]}"
        report("banner", line, problem, out, failures)
    print(f"banner: {len(lines) - len(failures)} of {len(lines)} grpcurl lines worked")
    if not lines:
        failures.append("the banner printed no grpcurl line")
    return failures


def doc_blocks(path: pathlib.Path) -> list[list[tuple[str, list[str] | None]]]:
    """Per fenced block, (command, shown output or None) for each grpcurl command and
    each `curl` command that names `$EMULATOR` (the emulator URL the banner prints)."""
    blocks, in_block, cur, output = [], False, None, None
    lines = path.read_text().splitlines()

    def flush():
        if cur is not None:
            blocks[-1].append((cur, output))

    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            if in_block:
                flush()
                cur, output = None, None
            else:
                blocks.append([])
            in_block = not in_block
            i += 1
            continue
        if in_block:
            text = line[2:] if line.startswith("$ ") else line
            if text.startswith("grpcurl ") or (text.startswith("curl ") and "$EMULATOR" in text):
                flush()
                cmd = text
                while cmd.endswith("\\") and i + 1 < len(lines):
                    i += 1
                    cmd = cmd[:-1].rstrip() + " " + lines[i].strip()
                cur, output = cmd, ([] if line.startswith("$ ") else None)
            elif line.startswith("$ "):
                flush()
                cur, output = None, None
            elif output is not None:
                output.append(line)
        i += 1
    return [b for b in blocks if b]


def json_keys(value, prefix="") -> set[str]:
    if isinstance(value, dict):
        keys = set()
        for k, v in value.items():
            keys |= {f"{prefix}.{k}"} | json_keys(v, f"{prefix}.{k}")
        return keys
    if isinstance(value, list):
        return set().union(*(json_keys(v, prefix + "[]") for v in value)) if value else set()
    return set()


def shape_mismatch(shown: list[str], rc: int, out: str) -> str | None:
    """None when `out` has the shape of the output the docs show."""
    text = "\n".join(shown).strip()
    if not text:
        return None
    if text.startswith("ERROR:"):
        code = re.search(r"Code: (\w+)", text)
        if code and rc != RPC_EXIT_OFFSET + CAMEL.get(code.group(1), -100):
            return f"docs show Code: {code.group(1)}, grpcurl exited {rc}"
        for needle in re.findall(r'"@type":"[^"]+"|"reason":"[^"]+"', text):
            if needle not in out:
                return f"docs show {needle}, the gateway did not send it"
        return None
    if rc != 0:
        return f"docs show a success, grpcurl exited {rc}"
    if text.startswith("{"):
        missing = json_keys(json.loads(text)) - json_keys(json.loads(out))
        return f"docs show fields the answer lacks: {sorted(missing)}" if missing else None
    missing = [l for l in shown if l.strip() and l.strip() not in out.splitlines()]
    return f"docs show lines the answer lacks: {missing}" if missing else None


def check_docs(dev: Dev) -> list[str]:
    """Runs each block's commands in order on a freshly reset emulator, so a block can
    show a sequence (a create, then its delete, then the delete of what is gone)."""
    failures, total = [], 0
    env = {"EMULATOR": dev.emulator or ""}
    for path in DOCS:
        for block in doc_blocks(path):
            dev.reset_emulator()
            for cmd, shown in block:
                total += 1
                rc, out = run(cmd.replace(DOC_ADDR, dev.addr), env)
                problem = ran_the_rpc(rc, out) if cmd.startswith("grpcurl ") else (
                    None if rc == 0 else f"exit {rc}")
                if problem is None and shown is not None and cmd.startswith("grpcurl "):
                    problem = shape_mismatch(shown, rc, out)
                report(path.relative_to(ROOT).as_posix(), cmd, problem, out, failures)
    print(f"docs: {total - len(failures)} of {total} commands worked")
    return failures


def check_readme_shows_banner(dev: Dev) -> list[str]:
    """The README's tour shows every grpcurl line the banner prints, verbatim."""
    readme = (ROOT / "README.md").read_text().splitlines()
    shown = {l[2:] if l.startswith("$ ") else l for l in readme}
    failures = []
    for line in (l.strip() for l in dev.banner if l.strip().startswith("grpcurl ")):
        cmd = line.split("   #", 1)[0].replace(dev.addr, DOC_ADDR)
        problem = None if cmd in shown else "the banner prints it, the README's tour does not"
        report("README tour", cmd, problem, "", failures)
    return failures


def report(where: str, line: str, problem: str | None, out: str, failures: list[str]):
    if problem is None:
        PASSED[0] += 1
        print(f"ok   {where}: {line}")
        return
    failures.append(f"{where}: {line}: {problem}")
    print(f"FAIL {where}: {line}\n       {problem}\n       output: {out.strip()[:600]}",
          file=sys.stderr)


def main() -> int:
    binary = os.environ.get("GATEWAY_BIN", str(ROOT / "target/debug/atlas-grpc-gateway"))
    dev = Dev(binary)
    try:
        failures = check_banner(dev)
        failures += check_readme_shows_banner(dev)
        failures += check_docs(dev)
    finally:
        dev.stop()
    print(f"commands: {PASSED[0]} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
