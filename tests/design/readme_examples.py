#!/usr/bin/env python3
"""The README's examples are the files the tests run: every code block that
follows `<!-- example: PATH -->` must equal PATH's contents exactly.

    python3 tests/design/readme_examples.py          # check
    python3 tests/design/readme_examples.py --write  # copy the files into the README
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"<!-- example: (?P<path>[^ ]+) -->\n```(?P<lang>\w*)\n(?P<body>.*?)```\n", re.S)


def main() -> int:
    readme_path = ROOT / "README.md"
    readme = readme_path.read_text()
    stale = []

    def replace(match: re.Match) -> str:
        path = match["path"]
        wanted = (ROOT / path).read_text()
        if match["body"] != wanted:
            stale.append(path)
        return f"<!-- example: {path} -->\n```{match['lang']}\n{wanted}```\n"

    updated, count = BLOCK.subn(replace, readme)
    if count == 0:
        print("readme_examples: no `<!-- example: … -->` block in README.md")
        return 1
    if "--write" in sys.argv[1:]:
        readme_path.write_text(updated)
        print(f"readme_examples: {len(stale)} of {count} blocks rewritten")
        return 0
    for path in stale:
        print(f"README.md: the block marked `example: {path}` differs from the file (run with --write)")
    if stale:
        return 1
    print(f"readme_examples: {count} README examples are the files the tests run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
