"""Every code block in README.md and docs/*.md is code that CI runs.

A block is marked with a comment line right before its fence:
    <!-- code: tests/interop/go/client.go#go-create-api-key -->
and the named file has the same lines between `docs:begin go-create-api-key` and
`docs:end` (compared after removing the region's common indentation). Any difference
fails, with a diff. A block in a programming language (python, js, go, java) without a
mark fails too. (grpcurl and `curl $EMULATOR` commands are run by commands.py; YAML and
TOML are checked by .ci/lint-deploy.sh.) Run by tests/interop/run.sh; needs only Python.
"""

import difflib
import pathlib
import re
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARK = re.compile(r"<!-- code: (\S+)#(\S+) -->")
CODE = {"python", "py", "js", "javascript", "go", "java"}


def region(path: pathlib.Path, name: str) -> str:
    lines = path.read_text().splitlines()
    begin = next(i for i, l in enumerate(lines) if l.strip().endswith(f"docs:begin {name}"))
    end = next(i for i in range(begin, len(lines)) if lines[i].strip().endswith("docs:end"))
    return textwrap.dedent("\n".join(lines[begin + 1 : end])).strip("\n")


def unmarked(doc: pathlib.Path):
    """Line numbers of code blocks in a programming language with no mark before them."""
    lines, in_block = doc.read_text().splitlines(), False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            lang = line[3:].strip().lower()
            if not in_block and lang in CODE and not (i and MARK.fullmatch(lines[i - 1].strip())):
                yield i + 1
            in_block = not in_block


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


def check(doc: pathlib.Path) -> tuple[int, int]:
    passed = failed = 0
    name = doc.relative_to(ROOT).as_posix()
    for n in unmarked(doc):
        print(f"FAIL {name}:{n}: a code block with no `<!-- code: file#region -->` mark",
              file=sys.stderr)
        failed += 1
    for rel, region_name, shown in blocks(doc):
        try:
            code = region(ROOT / rel, region_name)
        except (StopIteration, FileNotFoundError):
            print(f"FAIL {name}: {rel}#{region_name}: no such region", file=sys.stderr)
            failed += 1
            continue
        if code == shown:
            passed += 1
            print(f"ok   {name} shows {rel}#{region_name}")
            continue
        failed += 1
        diff = difflib.unified_diff(shown.splitlines(), code.splitlines(), name,
                                    f"{rel}#{region_name}", lineterm="")
        print(f"FAIL {name} differs from {rel}#{region_name}:\n" + "\n".join(diff),
              file=sys.stderr)
    return passed, failed


def main() -> int:
    passed = failed = 0
    for doc in DOCS:
        p, f = check(doc)
        passed, failed = passed + p, failed + f
    if passed + failed == 0:
        print("FAIL no document marks a code block", file=sys.stderr)
        failed = 1
    print(f"snippets: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
