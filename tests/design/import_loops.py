#!/usr/bin/env python3
"""Fails if any two source files of a crate import each other, directly or in a loop.

A file's imports are the modules named by its `use crate::…`, `use super::…`,
`crate::a::b` and `super::x` paths (inline test modules excluded: a file's own
`mod tests` may use its parent). Each path resolves to the longest prefix that
is a file of the crate (`a/b.rs` or `a/b/mod.rs`). The graph of files must have
no cycle; every cycle found is printed. Run from the repository's root.
"""
import os
import re
import sys

CRATES = {
    "keymint": "src",
    "keymint-domain": "crates/domain/src",
    "keymint-application": "crates/application/src",
    "keymint-infrastructure": "crates/infrastructure/src",
    "keymint-web": "crates/web/src",
    "keymint-cli": "crates/cli/src",
    "keymint-migrations": "migrations/src",
}

PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*?)\}", re.S)


def modules_of(root):
    """Module path (tuple) -> file, for every .rs file under root."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(folder, name), root)
            parts = rel[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            found[tuple(parts)] = os.path.join(root, rel)
    return found


def own_module(file, root):
    rel = os.path.relpath(file, root)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        return tuple(rel[:-1]), True
    return tuple(rel), False


def without_tests(text):
    """The file up to its inline test module, if any."""
    cut = re.search(r"^#\[cfg\(test\)\]\s*\nmod tests", text, re.M)
    return text[: cut.start()] if cut else text


def paths_in(text):
    for group in GROUP.finditer(text):
        base, prefix, inner = group.groups()
        for item in re.split(r",", inner):
            item = item.strip().split(" as ")[0].strip()
            item = re.sub(r"\{.*", "", item).strip(":")
            if item:
                yield base, prefix + "::" + item
    for match in PATH.finditer(GROUP.sub("", text)):
        yield match.group(1), match.group(2)


def resolve(base, path, here, is_dir, modules):
    parts = [p for p in path.split("::") if p]
    # `super` is the parent of the file's own module, whether the file is
    # a/b.rs or a/b/mod.rs (both are module a::b).
    start = () if base == "crate" else here[:-1]
    while parts and parts[0] == "super":
        start = start[:-1]
        parts = parts[1:]
    best = None
    # n = 0 is the starting module itself: `super::Database` names an item
    # defined in (or re-exported by) the parent's mod.rs.
    for n in range(len(parts), -1, -1):
        candidate = tuple(start) + tuple(parts[:n])
        if candidate in modules:
            best = candidate
            break
    return best


def cycles(graph):
    found, index, low, stack, on, counter = [], {}, {}, [], set(), [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            strong(v)
    return found


def loops_in(root):
    """Every cycle among the files under `root`, as lists of file paths."""
    modules = modules_of(root)
    graph = {}
    for module, file in modules.items():
        here, is_dir = own_module(file, root)
        text = without_tests(open(file, encoding="utf-8").read())
        targets = set()
        for base, path in paths_in(text):
            target = resolve(base, path, here, is_dir, modules)
            # A module may use its own children and the crate root's re-exports.
            if target is None or target == module or target == () or target[: len(module)] == module and module:
                continue
            targets.add(target)
        graph[module] = targets
    return [[modules[m] for m in cycle] for cycle in cycles(graph)]


def self_test():
    """The checker finds the loops it exists for: through `crate::` paths and
    `use` groups, and between siblings through `super::` (a parent's use of
    its own children, as mod.rs re-exports do, is not a loop)."""
    import tempfile

    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "sql"))
        files = {
            "lib.rs": "mod a; mod b; mod sql;",
            "a.rs": "use crate::b::Thing;",
            "b.rs": "use crate::a::{Other, More};",
            "sql/mod.rs": "mod x; mod y; mod z; pub struct Db; pub use x::go;",
            "sql/x.rs": "use super::Db; use super::y::Row;",
            "sql/y.rs": "pub struct Row; fn f() { super::x::go() }",
            "sql/z.rs": "use super::{Db, x::go};",
        }
        for name, text in files.items():
            with open(os.path.join(root, name), "w", encoding="utf-8") as f:
                f.write(text)
        found = sorted(sorted(os.path.relpath(f, root) for f in cycle) for cycle in loops_in(root))
        expected = [["a.rs", "b.rs"], ["sql/x.rs", "sql/y.rs"]]
        if found != expected:
            sys.exit(f"import loops: the checker's own test found {found}, expected {expected}")


def main():
    self_test()
    failed = False
    for crate, root in CRATES.items():
        if not os.path.isdir(root):
            continue
        for names in loops_in(root):
            failed = True
            print(f"{crate}: these files import each other in a loop: {', '.join(names)}")
    if failed:
        sys.exit(1)
    print("import loops: none (and the checker found the loops of its own test)")


main()
