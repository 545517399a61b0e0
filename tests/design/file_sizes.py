#!/usr/bin/env python3
"""Fails if a Rust source file is over 500 lines before its tests, or a console
module over 400 lines.

A file's length before its tests is its line count up to its inline
`#[cfg(test)]` module, if any. Test code (files under `tests/`, `tests.rs`
and `tests/` modules) is exempt. Run from the repository's root.
"""
import os
import re
import subprocess
import sys

RUST_LIMIT = 500
CONSOLE_LIMIT = 400


def tracked(pattern):
    out = subprocess.run(["git", "ls-files", pattern], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line]


def before_tests(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^#\[cfg\(test\)\]", line):
            return number
    return len(lines)


def is_test_code(path):
    parts = path.split("/")
    return parts[0] == "tests" or "tests" in parts[:-1] or parts[-1] == "tests.rs" or "benches" in parts


def main():
    over = []
    for path in tracked("*.rs"):
        if is_test_code(path) or not os.path.exists(path):
            continue
        n = before_tests(path)
        if n > RUST_LIMIT:
            over.append(f"{path}: {n} lines before its tests (limit {RUST_LIMIT})")
    for path in tracked("crates/web/console/*.js"):
        with open(path, encoding="utf-8") as f:
            n = len(f.read().splitlines())
        if n > CONSOLE_LIMIT:
            over.append(f"{path}: {n} lines (limit {CONSOLE_LIMIT})")
    for line in over:
        print(line)
    if over:
        sys.exit(1)
    print(f"file sizes: every Rust source file within {RUST_LIMIT} lines before its tests, "
          f"every console module within {CONSOLE_LIMIT}")


if __name__ == "__main__":
    main()
