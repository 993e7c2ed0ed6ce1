//! What every implementation shares: the drop counter, the random number
//! generator, the workload sizes, and the workload code itself (a macro that
//! each implementation's module expands over its own pointer and node types).

use std::cell::Cell;

thread_local! {
    static DROPS: Cell<usize> = const { Cell::new(0) };
}

/// A zero-sized field in every benchmarked node: its `Drop` counts the node
/// as freed. Each workload returns how many nodes it created, and the harness
/// asserts that exactly that many were dropped, so nobody wins by leaking.
pub struct Counted;

impl Drop for Counted {
    #[inline]
    fn drop(&mut self) {
        DROPS.with(|d| d.set(d.get() + 1));
    }
}

/// Nodes dropped on this thread so far.
pub fn drops() -> usize {
    DROPS.with(Cell::get)
}

/// xorshift64*: deterministic, tiny, and the same stream for everybody.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform enough in `0..n` (`n` > 0) for a benchmark.
    #[inline]
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

/// Workload sizes. `full()` is what `cargo bench` measures; `tiny()` is what
/// `cargo test --benches` runs (each benchmark once, as a smoke test).
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    /// Binary trees: the maximum depth (benchmarks-game style, from depth 4).
    pub tree_depth: usize,
    /// Doubly linked lists: how many, and how long.
    pub lists: usize,
    pub list_len: usize,
    /// Random graph stress test: log2 of the node (and edge) count, and
    /// log2 of the truncation step.
    pub graph_log2: u32,
    pub graph_step_log2: u32,
    /// dumpster's random churn: operations.
    pub churn_ops: usize,
    /// Clone churn: clone + drop pairs.
    pub clones: usize,
    /// Many small cycles: two-object cycles.
    pub pairs: usize,
    /// The doubly linked ring: nodes.
    pub ring: usize,
    /// Idle collections: live nodes and collections.
    pub idle_nodes: usize,
    pub idle_rounds: usize,
    /// Collection latency: live nodes beside the dead 2-cycle.
    pub latency_live: usize,
}

impl Sizes {
    pub const fn full() -> Sizes {
        Sizes {
            tree_depth: 11,
            lists: 30,
            list_len: 4096,
            graph_log2: 15,
            graph_step_log2: 10,
            churn_ops: 1_000_000,
            clones: 10_000_000,
            pairs: 100_000,
            ring: 1_000_000,
            idle_nodes: 100_000,
            idle_rounds: 20,
            latency_live: 1_000_000,
        }
    }

    pub const fn tiny() -> Sizes {
        Sizes {
            tree_depth: 6,
            lists: 3,
            list_len: 64,
            graph_log2: 8,
            graph_step_log2: 4,
            churn_ops: 2_000,
            clones: 1_000,
            pairs: 100,
            ring: 1_000,
            idle_nodes: 1_000,
            idle_rounds: 2,
            latency_live: 1_000,
        }
    }
}

/// A live graph for the idle-collection and latency workloads, built outside
/// the timed loop.
pub trait LiveGraph {
    /// `rounds` times: take and release a temporary handle to every node (so
    /// every node becomes a cycle candidate, as when a program walks its
    /// data), then collect, which must free nothing.
    fn touch_and_collect(&self, rounds: usize);
    /// Drops the graph (breaking its cycles by hand for `Rc`) and collects;
    /// returns how many nodes were created, which must all be dropped now.
    fn teardown(self: Box<Self>) -> usize;
}

/// One implementation's workloads, as plain functions. Each returns the
/// number of nodes it created; all of them must have been dropped when it
/// returns (its own collection call, where it needs one, is part of it).
pub struct Imp {
    pub name: &'static str,
    pub binary_trees: fn(usize) -> usize,
    pub parent_strong: fn(usize) -> usize,
    /// `None`: the crate has no weak pointer.
    pub parent_weak: Option<fn(usize) -> usize>,
    pub linked_lists: fn(usize, usize) -> usize,
    pub stress_graph: fn(u32, u32, u64) -> usize,
    pub churn: fn(usize, u64) -> usize,
    pub clone_churn: fn(usize) -> usize,
    pub small_cycles: fn(usize) -> usize,
    pub ring: fn(usize) -> usize,
    pub live_graph: fn(usize, usize, u64) -> Box<dyn LiveGraph>,
    pub dead_pair: fn() -> usize,
    /// Allocates `n` pointers to a `u64` and returns them (type-erased) and
    /// the size of one handle, for the bytes-per-object measurement.
    pub u64_objects: fn(usize) -> (Box<dyn std::any::Any>, usize),
    /// The crate's "collect everything now" call (a no-op for `Rc`).
    pub collect: fn(),
}

/// The workloads, written once. The module expanding it provides:
/// `P` (the strong pointer: `P::new`, `Clone`), `Cell` (a `RefCell`-like
/// cell: `new`, `borrow`, `borrow_mut`), `collect_all()`, the node types
/// (`Tree`, `PTree`, `LNode`, `GNode`, `MNode`, `Val`, `Pair`, `RNode`, with
/// the fields used below and a `Counted` field `_c`), and the macro
/// `if_rc!` (expands its body for `Rc` only: cycles broken by hand).
#[macro_export]
macro_rules! workloads {
    () => {
        use $crate::common::{Counted, LiveGraph, Rng};

        fn tree(depth: usize) -> P<Tree> {
            if depth == 0 {
                P::new(Tree {
                    _c: Counted,
                    left: None,
                    right: None,
                })
            } else {
                P::new(Tree {
                    _c: Counted,
                    left: Some(tree(depth - 1)),
                    right: Some(tree(depth - 1)),
                })
            }
        }

        fn check(t: &Tree) -> usize {
            1 + t.left.as_deref().map_or(0, check) + t.right.as_deref().map_or(0, check)
        }

        /// Benchmarks-game binary trees: a stretch tree of depth `max + 1`, a
        /// long-lived tree of depth `max`, and `2^(max - d + 4)` trees of each
        /// depth `d` in 4, 6, .., max, each built, checked and dropped.
        pub fn binary_trees(max: usize) -> usize {
            let mut nodes = 0;
            nodes += check(&tree(max + 1));
            let long_lived = tree(max);
            for depth in (4..=max).step_by(2) {
                for _ in 0..1usize << (max - depth + 4) {
                    nodes += check(&tree(depth));
                }
            }
            nodes += check(&long_lived);
            drop(long_lived);
            collect_all();
            nodes
        }

        fn ptree(depth: usize) -> P<PTree> {
            let node = if depth == 0 {
                P::new(PTree {
                    _c: Counted,
                    parent: Cell::new(None),
                    left: None,
                    right: None,
                })
            } else {
                P::new(PTree {
                    _c: Counted,
                    parent: Cell::new(None),
                    left: Some(ptree(depth - 1)),
                    right: Some(ptree(depth - 1)),
                })
            };
            for child in [&node.left, &node.right].into_iter().flatten() {
                *child.parent.borrow_mut() = Some(node.clone());
            }
            node
        }

        fn pcheck(t: &PTree) -> usize {
            1 + t.left.as_deref().map_or(0, pcheck) + t.right.as_deref().map_or(0, pcheck)
        }

        if_rc! {
            fn unparent(t: &PTree) {
                *t.parent.borrow_mut() = None;
                for child in [&t.left, &t.right].into_iter().flatten() {
                    unparent(child);
                }
            }
        }

        /// The binary trees with a strong parent pointer in every node: each
        /// tree is a cycle-rich garbage structure once dropped.
        pub fn parent_strong(max: usize) -> usize {
            let mut nodes = 0;
            let mut one = |depth: usize| {
                let t = ptree(depth);
                nodes += pcheck(&t);
                if_rc! { unparent(&t); }
                drop(t);
            };
            one(max + 1);
            let long_lived = ptree(max);
            for depth in (4..=max).step_by(2) {
                for _ in 0..1usize << (max - depth + 4) {
                    one(depth);
                }
            }
            nodes += pcheck(&long_lived);
            if_rc! { unparent(&long_lived); }
            drop(long_lived);
            collect_all();
            nodes
        }

        /// 30 doubly linked lists of 4096 nodes (plus a terminator), each
        /// built by prepending, measured, and dropped.
        pub fn linked_lists(lists: usize, len: usize) -> usize {
            let mut nodes = 0;
            for _ in 0..lists {
                let mut head = P::new(LNode {
                    _c: Counted,
                    next: None,
                    prev: Cell::new(None),
                });
                for _ in 0..len {
                    let node = P::new(LNode {
                        _c: Counted,
                        next: Some(head.clone()),
                        prev: Cell::new(None),
                    });
                    *head.prev.borrow_mut() = Some(node.clone());
                    head = node;
                }
                let mut n = 1;
                let mut cur = head.next.clone();
                while let Some(node) = cur {
                    n += 1;
                    cur = node.next.clone();
                }
                assert_eq!(n, len + 1);
                nodes += n;
                if_rc! {
                    let mut cur = Some(head.clone());
                    while let Some(node) = cur {
                        *node.prev.borrow_mut() = None;
                        cur = node.next.clone();
                    }
                }
                drop(head);
            }
            collect_all();
            nodes
        }

        /// The random-graph stress test: `2^log2 + 1` labelled nodes,
        /// `2^log2 + 1` random edges, then the root set is truncated by
        /// `2^step_log2` nodes at a time, with a collection after each cut.
        pub fn stress_graph(log2: u32, step_log2: u32, seed: u64) -> usize {
            let count = 1usize << log2;
            let step = 1usize << step_log2;
            let mut rng = Rng::new(seed);
            let mut nodes: Vec<P<Cell<GNode>>> = (0..=count)
                .map(|i| {
                    P::new(Cell::new(GNode {
                        _c: Counted,
                        label: format!("Node {i}"),
                        edges: Vec::new(),
                    }))
                })
                .collect();
            if_rc! {
                let all: Vec<_> = nodes.iter().map(P::downgrade).collect();
            }
            for _ in 0..=count {
                let a = rng.below(nodes.len());
                let b = rng.below(nodes.len());
                let target = nodes[b].clone();
                nodes[a].borrow_mut().edges.push(target);
            }
            let mut label_bytes = 0;
            for i in (0..count).step_by(step) {
                nodes.truncate(count - i);
                collect_all();
                label_bytes += nodes.last().map_or(0, |n| n.borrow().label.len());
            }
            std::hint::black_box(label_bytes);
            drop(nodes);
            if_rc! {
                for w in &all {
                    if let Some(n) = w.upgrade() {
                        n.borrow_mut().edges.clear();
                    }
                }
            }
            collect_all();
            count + 1
        }

        fn mnode(refs: Vec<P<MNode>>) -> P<MNode> {
            P::new(MNode {
                _c: Counted,
                refs: Cell::new(refs),
            })
        }

        /// dumpster's single-threaded benchmark, reimplemented: 50 roots,
        /// then `ops` random operations (allocate a root, add an edge
        /// between two roots, drop a root, drop an edge of a root), then
        /// drop everything and collect.
        pub fn churn(ops: usize, seed: u64) -> usize {
            let mut rng = Rng::new(seed);
            let mut created = 50;
            let mut roots: Vec<P<MNode>> = (0..50).map(|_| mnode(Vec::new())).collect();
            if_rc! {
                let mut all: Vec<_> = roots.iter().map(P::downgrade).collect();
            }
            for _ in 0..ops {
                if roots.is_empty() {
                    roots.push(mnode(Vec::new()));
                    created += 1;
                    if_rc! { all.push(P::downgrade(roots.last().unwrap())); }
                    continue;
                }
                match rng.below(4) {
                    0 => {
                        roots.push(mnode(Vec::new()));
                        created += 1;
                        if_rc! { all.push(P::downgrade(roots.last().unwrap())); }
                    }
                    1 => {
                        if roots.len() > 1 {
                            let from = rng.below(roots.len());
                            let to = rng.below(roots.len());
                            let edge = roots[to].clone();
                            roots[from].refs.borrow_mut().push(edge);
                        }
                    }
                    2 => {
                        let i = rng.below(roots.len());
                        roots.swap_remove(i);
                    }
                    _ => {
                        let from = rng.below(roots.len());
                        let mut refs = roots[from].refs.borrow_mut();
                        if !refs.is_empty() {
                            let i = rng.below(refs.len());
                            let gone = refs.swap_remove(i);
                            drop(refs);
                            drop(gone);
                        }
                    }
                }
            }
            drop(roots);
            if_rc! {
                for w in &all {
                    if let Some(n) = w.upgrade() {
                        let refs = std::mem::take(&mut *n.refs.borrow_mut());
                        drop(refs);
                    }
                }
            }
            collect_all();
            created
        }

        /// `n` clone + drop pairs of one pointer.
        pub fn clone_churn(n: usize) -> usize {
            let p = P::new(Val { _c: Counted, v: 7 });
            let mut sum = 0u64;
            for _ in 0..n {
                let q = std::hint::black_box(p.clone());
                sum = sum.wrapping_add(q.v);
                drop(q);
            }
            std::hint::black_box(sum);
            drop(p);
            collect_all();
            1
        }

        fn pair() {
            let a = P::new(Pair {
                _c: Counted,
                other: Cell::new(None),
            });
            let b = P::new(Pair {
                _c: Counted,
                other: Cell::new(Some(a.clone())),
            });
            *a.other.borrow_mut() = Some(b.clone());
            if_rc! { *a.other.borrow_mut() = None; }
            drop(a);
            drop(b);
        }

        /// `n` two-object cycles, each made and dropped at once; automatic
        /// collection (where the crate has one) runs as it likes, one final
        /// collection at the end.
        pub fn small_cycles(n: usize) -> usize {
            for _ in 0..n {
                pair();
            }
            collect_all();
            2 * n
        }

        /// One dead 2-cycle, then a collection.
        pub fn dead_pair() -> usize {
            pair();
            collect_all();
            2
        }

        fn rnode() -> P<RNode> {
            P::new(RNode {
                _c: Counted,
                next: Cell::new(None),
                prev: Cell::new(None),
            })
        }

        /// A doubly linked ring of `n` nodes, built by prepending, dropped,
        /// collected.
        pub fn ring(n: usize) -> usize {
            let first = rnode();
            let mut head = first.clone();
            for _ in 1..n {
                let node = rnode();
                *node.next.borrow_mut() = Some(head.clone());
                *head.prev.borrow_mut() = Some(node.clone());
                head = node;
            }
            *first.next.borrow_mut() = Some(head.clone());
            *head.prev.borrow_mut() = Some(first.clone());
            if_rc! {
                // Iteratively, so no drop recurses along the ring.
                let mut cur = Some(first.clone());
                while let Some(node) = cur {
                    *node.prev.borrow_mut() = None;
                    cur = node.next.borrow_mut().take();
                }
            }
            drop(first);
            drop(head);
            collect_all();
            n
        }

        struct Graph {
            nodes: Vec<P<MNode>>,
        }

        /// `n` live nodes held from outside, each with `edges` edges to
        /// random nodes (so the graph is full of live cycles).
        pub fn live_graph(n: usize, edges: usize, seed: u64) -> Box<dyn LiveGraph> {
            let mut rng = Rng::new(seed);
            let nodes: Vec<P<MNode>> = (0..n).map(|_| mnode(Vec::with_capacity(edges))).collect();
            for node in &nodes {
                for _ in 0..edges {
                    let to = nodes[rng.below(n)].clone();
                    node.refs.borrow_mut().push(to);
                }
            }
            collect_all();
            Box::new(Graph { nodes })
        }

        impl LiveGraph for Graph {
            fn touch_and_collect(&self, rounds: usize) {
                let before = $crate::common::drops();
                for _ in 0..rounds {
                    for node in &self.nodes {
                        drop(std::hint::black_box(node.clone()));
                    }
                    collect_all();
                }
                assert_eq!($crate::common::drops(), before, "freed a live node");
            }

            fn teardown(self: Box<Self>) -> usize {
                let n = self.nodes.len();
                if_rc! {
                    for node in &self.nodes {
                        node.refs.borrow_mut().clear();
                    }
                }
                drop(self);
                collect_all();
                n
            }
        }

        pub fn u64_objects(n: usize) -> (Box<dyn std::any::Any>, usize) {
            let mut v = Vec::with_capacity(n);
            for i in 0..n as u64 {
                v.push(P::new(i));
            }
            (Box::new(v), std::mem::size_of::<P<u64>>())
        }

        pub const IMP: $crate::common::Imp = $crate::common::Imp {
            name: NAME,
            binary_trees,
            parent_strong,
            parent_weak: PARENT_WEAK,
            linked_lists,
            stress_graph,
            churn,
            clone_churn,
            small_cycles,
            ring,
            live_graph,
            dead_pair,
            u64_objects,
            collect: collect_all,
        };
    };
}

/// The binary trees with a weak parent pointer in every node (no cycle), for
/// crates with a weak pointer: the module provides `W` and `downgrade`.
#[macro_export]
macro_rules! weak_workloads {
    () => {
        fn wtree(depth: usize) -> P<WTree> {
            let node = if depth == 0 {
                P::new(WTree {
                    _c: $crate::common::Counted,
                    parent: Cell::new(None),
                    left: None,
                    right: None,
                })
            } else {
                P::new(WTree {
                    _c: $crate::common::Counted,
                    parent: Cell::new(None),
                    left: Some(wtree(depth - 1)),
                    right: Some(wtree(depth - 1)),
                })
            };
            for child in [&node.left, &node.right].into_iter().flatten() {
                *child.parent.borrow_mut() = Some(downgrade(&node));
            }
            node
        }

        fn wcheck(t: &WTree) -> usize {
            1 + t.left.as_deref().map_or(0, wcheck) + t.right.as_deref().map_or(0, wcheck)
        }

        pub fn parent_weak(max: usize) -> usize {
            let mut nodes = wcheck(&wtree(max + 1));
            let long_lived = wtree(max);
            for depth in (4..=max).step_by(2) {
                for _ in 0..1usize << (max - depth + 4) {
                    nodes += wcheck(&wtree(depth));
                }
            }
            nodes += wcheck(&long_lived);
            drop(long_lived);
            collect_all();
            nodes
        }

        const PARENT_WEAK: Option<fn(usize) -> usize> = Some(parent_weak);
    };
}
