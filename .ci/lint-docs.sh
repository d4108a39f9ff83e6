#!/usr/bin/env bash
# Fails when README.md or docs/*.md name a path outside the repository: a reader of the
# repository has nothing else. Checked in each file:
#   - Markdown link targets that are not URLs: resolved from the file's directory, they
#     must stay inside the repository and exist;
#   - any other relative path with `../` (in code spans, prose or code blocks): resolved
#     the same way, it must name something inside the repository;
#   - absolute paths to a machine's own directories (/work/, /home/, /Users/, /tmp/,
#     ~/, file://).
# Usage (from anywhere): bash .ci/lint-docs.sh; run by .ci/lint-deploy.sh. Needs python3.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

python3 - README.md docs/*.md <<'PY'
import os, re, sys

root = os.path.realpath(".")
link = re.compile(r"\]\(([^)\s]+)\)")
updir = re.compile(r"(?<![\w/.])((?:\./)?(?:\.\./)+[\w./-]*)")
absolute = re.compile(r"(?<![\w.])(/work/|/home/|/Users/|/tmp/|~/|file://)\S*")
problems = []

def inside(doc, rel):
    target = os.path.realpath(os.path.join(os.path.dirname(doc), rel))
    return target == root or target.startswith(root + os.sep), target

for doc in sys.argv[1:]:
    for n, line in enumerate(open(doc, encoding="utf-8"), 1):
        for target in link.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            ok, path = inside(doc, target.split("#", 1)[0])
            if not ok:
                problems.append(f"{doc}:{n}: link {target} leaves the repository")
            elif not os.path.exists(path):
                problems.append(f"{doc}:{n}: link {target} names no file in the repository")
        for rel in updir.findall(line):
            ok, path = inside(doc, rel.rstrip("."))
            if not ok or not os.path.exists(path):
                problems.append(f"{doc}:{n}: path {rel} names nothing in the repository")
        for m in absolute.finditer(line):
            problems.append(f"{doc}:{n}: {m.group(0)} is a path on some machine, not in the repository")

for p in problems:
    print(f"lint-docs: {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"lint-docs: {len(sys.argv) - 1} files name no path outside the repository")
PY
