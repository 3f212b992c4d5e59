"""Fail when a function in the given trees is more complex than the limit (radon's measure).

    python tools/complexity.py src --max 12

Branchy code is where bugs hide and reviews skim; past the limit, split the function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from radon.complexity import cc_visit
from radon.visitors import Class, Function


def blocks(path: Path) -> Iterator[Function]:
    """Every function, method and nested function of one module."""
    pending: list[Function | Class] = list(cc_visit(path.read_text(encoding="utf-8")))
    while pending:
        block = pending.pop()
        if isinstance(block, Class):
            pending.extend(block.methods)
            pending.extend(block.inner_classes)
            continue
        yield block
        pending.extend(block.closures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", type=Path)
    parser.add_argument("--max", type=int, default=12)
    args = parser.parse_args(argv)
    over = sorted(
        (str(path), block.lineno, block.fullname, block.complexity)
        for tree in args.trees
        for path in sorted(tree.rglob("*.py"))
        for block in blocks(path)
        if block.complexity > args.max
    )
    for path, line, name, complexity in over:
        print(f"{path}:{line}: {name} has cyclomatic complexity {complexity} > {args.max}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
