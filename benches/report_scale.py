#!/usr/bin/env python3
"""Python's memory tools on the tree of benches/report_scale.rs (issue 20).

    python3 -m venv /work/venv-report
    /work/venv-report/bin/pip install guppy3 objgraph
    /work/venv-report/bin/python benches/report_scale.py [N] [ROUNDS]

N (live nodes) and ROUNDS (rounds per query) come from the arguments, else
from RCYCLE_REPORT_N / RCYCLE_REPORT_ROUNDS, else 1,000,000 and 3;
RCYCLE_REPORT_ONLY (comma-separated query names) runs only those. Prints one
JSON line per query on stdout, like the Rust bench:
{"impl": "python", "query": ..., "call": ..., "n": ..., "rounds": ...,
 "median_ms": ..., "min_ms": ..., "ms": [...]} and query-specific fields;
"query" is the name of the rcycle query it is compared with.

The tree: a __slots__ class Node(id, kids), node i > 0 appended to the kids
list of node (i - 1) // 8, made in order of i. The root (node 0) is held by a
module global, ROOT; the leaf (node N - 1) only by a local variable of main()
and its parent's kids list, so that find_backref_chain must walk up the
tree: leaf <- kids list <- Node <- ... <- root <- __main__'s globals dict
<- the __main__ module.

Calls timed (query name, then the call):
- build: the tree (one round);
- collect: gc.collect();
- live_report: hpy().heap(), forced by str() (its table) and .size;
- count: objgraph.count('Node');
- referrers: gc.get_referrers(leaf);
- why_alive: objgraph.find_backref_chain(leaf, objgraph.is_proper_module)
  (it runs gc.collect() first, as objgraph does);
- retained_size: hpy().iso(ROOT).domisize;
- dot_backrefs: objgraph.show_backrefs([leaf], output=StringIO) (DOT text
  only; default max_depth 3 and too_many 10, as rcycle's DotOptions).
A fresh hpy() is made inside each timed guppy call, so that nothing guppy
caches between calls is reused (hpy() itself takes well under a
millisecond). Each result is checked once, outside the timed region.
"""

import gc
import io
import json
import os
import statistics
import sys
import time

import objgraph
from guppy import hpy


class Node:
    __slots__ = ("id", "kids")

    def __init__(self, id):
        self.id = id
        self.kids = []


ROOT = None


def depth(i):
    d = 0
    while i > 0:
        i = (i - 1) // 8
        d += 1
    return d


def arg(index, env, default):
    if len(sys.argv) > index:
        return int(sys.argv[index].replace("_", ""))
    if os.environ.get(env):
        return int(os.environ[env].replace("_", ""))
    return default


def build(n):
    nodes = [Node(i) for i in range(n)]
    for i in range(1, n):
        nodes[(i - 1) // 8].kids.append(nodes[i])
    return nodes[0], nodes[n - 1]


def emit(name, call, n, ms, extra):
    line = {"impl": "python", "query": name, "call": call, "n": n, "rounds": len(ms),
            "median_ms": round(statistics.median(ms), 3), "min_ms": round(min(ms), 3),
            "ms": [round(m, 3) for m in ms]}
    line.update(extra)
    print(json.dumps(line), flush=True)
    print(f"  {name} ({call}): median {statistics.median(ms):.1f} ms", file=sys.stderr)


def main():
    # `leaf` lives only in this function's fast locals: no closure, cell,
    # tuple or list made here refers to it, so that gc.get_referrers and
    # find_backref_chain see the tree's reference to it and nothing else.
    # The queries on it are timed by loops written out here for that reason.
    global ROOT
    n = max(arg(1, "RCYCLE_REPORT_N", 1_000_000), 2)
    rounds = max(arg(2, "RCYCLE_REPORT_ROUNDS", 3), 1)
    # With more than one round, one more runs first, untimed: a warm-up, as
    # in benches/report_scale.rs.
    WARM = 1 if rounds > 1 else 0
    only = [q.strip() for q in os.environ.get("RCYCLE_REPORT_ONLY", "").split(",") if q.strip()]
    wanted = lambda name: not only or name in only  # noqa: E731
    print(f"report_scale.py: {n} nodes, {rounds} rounds, Python {sys.version.split()[0]}",
          file=sys.stderr)

    def run(name, call, rounds, query, check):
        """Times query() (which must not refer to the leaf)."""
        if not wanted(name):
            return
        gc.collect()
        ms = []
        for r in range(rounds + WARM):
            start = time.perf_counter()
            result = query()
            ms.append((time.perf_counter() - start) * 1e3)
            if r == 0:
                extra = check(result) or {}
            del result
        del ms[:WARM]  # the warm-up round
        emit(name, call, n, ms, extra)

    start = time.perf_counter()
    ROOT, leaf = build(n)
    emit("build", "build the tree", n, [(time.perf_counter() - start) * 1e3], {})
    assert (ROOT.id, leaf.id) == (0, n - 1)
    leaf_depth = depth(n - 1)
    gc.collect()

    # The tree's own size, as guppy counts it: what domisize is checked
    # against. The root dominates every node but the leaf (which this
    # function holds too), every kids list, and every id int but the cached
    # small ones (-5 to 256).
    def own_size(node):
        return sys.getsizeof(node) + (sys.getsizeof(node.id) if node.id > 256 else 0)

    tree_size = 0
    stack = [ROOT]
    while stack:
        node = stack.pop()
        tree_size += own_size(node) + sys.getsizeof(node.kids)
        stack.extend(node.kids)
    del stack, node
    leaf_size = own_size(leaf) + sys.getsizeof(leaf.kids)

    run("collect", "gc.collect()", rounds, gc.collect, lambda freed: {"freed": freed})

    def check_count(c):
        assert c == n, c
        return {}

    run("count", "objgraph.count('Node')", rounds, lambda: objgraph.count("Node"), check_count)

    if wanted("referrers"):
        gc.collect()
        ms = []
        for _ in range(rounds + WARM):
            start = time.perf_counter()
            r = gc.get_referrers(leaf)
            ms.append((time.perf_counter() - start) * 1e3)
            # The parent's kids list, and nothing else.
            assert len(r) == 1 and type(r[0]) is list and r[0][-1] is leaf, r
            del r
        del ms[:WARM]  # the warm-up round
        emit("referrers", "gc.get_referrers(leaf)", n, ms, {"referrers": 1})

    if wanted("why_alive"):
        gc.collect()
        ms = []
        for _ in range(rounds + WARM):
            start = time.perf_counter()
            chain = objgraph.find_backref_chain(leaf, objgraph.is_proper_module)
            ms.append((time.perf_counter() - start) * 1e3)
            # The module, its globals dict, then a Node and its kids list per
            # level above the leaf, then the leaf.
            assert chain[0] is sys.modules[__name__], chain[0]
            assert chain[2] is ROOT and chain[-1] is leaf
            assert len(chain) == 2 * leaf_depth + 3, len(chain)
            links = len(chain)
            del chain
        del ms[:WARM]  # the warm-up round
        emit("why_alive", "objgraph.find_backref_chain(leaf, is_proper_module)", n, ms,
             {"links": links})

    if wanted("dot_backrefs"):
        gc.collect()
        ms = []
        for _ in range(rounds + WARM):
            out = io.StringIO()
            start = time.perf_counter()
            objgraph.show_backrefs([leaf], output=out)
            ms.append((time.perf_counter() - start) * 1e3)
            dot = out.getvalue()
            assert dot.startswith("digraph ObjectGraph"), dot[:40]
            edges = sum(1 for line in dot.splitlines() if " -> " in line)
            assert edges >= 3, dot
            del out, dot
        del ms[:WARM]  # the warm-up round
        emit("dot_backrefs", "objgraph.show_backrefs([leaf], output=StringIO)", n, ms,
             {"edges": edges})

    # guppy last: a heap() leaves sets of every object in reference cycles
    # until the next gc.collect(), which gc.get_referrers would list.
    def heap():
        h = hpy().heap()
        text = str(h)
        return h.count, h.size, text

    def check_heap(result):
        count, size, text = result
        assert count >= 2 * n, count  # every Node and its kids list
        assert n < 100_000 or "__main__.Node" in text, text  # in the first rows
        return {"objects": count, "size": size}

    run("live_report", "hpy().heap()", rounds, heap, check_heap)

    def check_domisize(size):
        expected = tree_size - leaf_size
        assert size == expected, (size, expected)
        return {"bytes": size, "tree_size": tree_size}

    run("retained_size", "hpy().iso(ROOT).domisize", rounds, lambda: hpy().iso(ROOT).domisize,
        check_domisize)


if __name__ == "__main__":
    main()
