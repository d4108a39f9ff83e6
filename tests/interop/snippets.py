"""The code in docs/clients.md (Go, Java) and docs/service-accounts.md (Python) is the
code the interop suites compile and run.

Such a doc marks such a block with a comment line right before its fence:
    <!-- code: tests/interop/go/client.go#go-create-api-key -->
and the named file has the same lines between `docs:begin go-create-api-key` and
`docs:end` (compared after removing the region's common indentation). Any difference
fails, with a diff. Run by tests/interop/run.sh; needs nothing but Python.
"""

import difflib
import pathlib
import re
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = [ROOT / "docs" / "clients.md", ROOT / "docs" / "service-accounts.md"]
MARK = re.compile(r"<!-- code: (\S+)#(\S+) -->")


def region(path: pathlib.Path, name: str) -> str:
    lines = path.read_text().splitlines()
    begin = next(i for i, l in enumerate(lines) if l.strip().endswith(f"docs:begin {name}"))
    end = next(i for i in range(begin, len(lines)) if lines[i].strip().endswith("docs:end"))
    return textwrap.dedent("\n".join(lines[begin + 1 : end])).strip("\n")


def blocks(doc: pathlib.Path):
    lines = doc.read_text().splitlines()
    for i, line in enumerate(lines):
        m = MARK.fullmatch(line.strip())
        if not m:
            continue
        start = i + 1
        assert lines[start].startswith("```"), f"{doc.name}:{start + 1}: a fence must follow {line}"
        end = next(j for j in range(start + 1, len(lines)) if lines[j].startswith("```"))
        yield m.group(1), m.group(2), "\n".join(lines[start + 1 : end])


def main() -> int:
    passed = failed = 0
    for doc in DOCS:
        shown_in = f"docs/{doc.name}"
        marked = 0
        for rel, name, shown in blocks(doc):
            marked += 1
            try:
                code = region(ROOT / rel, name)
            except (StopIteration, FileNotFoundError):
                print(f"FAIL {rel}#{name}: no such region", file=sys.stderr)
                failed += 1
                continue
            if code == shown:
                passed += 1
                print(f"ok   {shown_in} shows {rel}#{name}")
                continue
            failed += 1
            diff = difflib.unified_diff(shown.splitlines(), code.splitlines(), shown_in,
                                        f"{rel}#{name}", lineterm="")
            print(f"FAIL {shown_in} differs from {rel}#{name}:\n" + "\n".join(diff),
                  file=sys.stderr)
        if marked == 0:
            print(f"FAIL {shown_in} marks no code block", file=sys.stderr)
            failed += 1
    print(f"snippets: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
