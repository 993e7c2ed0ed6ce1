//! Model-based random test of `Gc`, `WeakGc` and the cycle collector.
//!
//! Proptest generates random sequences of [`Op`]s over a graph of up to
//! [`MAX_NODES`] `Node`s. Every operation is applied twice: to the real heap
//! (`World`) and to a plain-data reference [`Model`]:
//!
//! * `edges[id]`: the node's outgoing edges, in order (a multiset of targets);
//! * `roots`: the strong handles the test holds (one entry per `Gc`), in the
//!   same order as the real ones;
//! * `weaks`: the `WeakGc` handles the test holds;
//! * `dropped[id]`: whether the node's value has been dropped.
//!
//! A node's strong count is its number of root handles plus the edges to it
//! from nodes whose value has not been dropped. Reference counting is modelled
//! exactly: whenever a live node's count reaches zero, its value is dropped and
//! its edges are released (a cascade). An explicit `Collect` drops every node
//! that is not reachable from a root handle, and must return exactly how many
//! such nodes were still live; afterwards "not dropped" == "reachable".
//!
//! After every operation the test compares the set of nodes whose `Drop` ran
//! with the model's, walks the real graph from the root handles (reading every
//! value and comparing ids, edge lists, `strong_count` and `weak_count`),
//! checks `WeakGc::strong_count` of every kept weak handle, and checks that
//! `object_count()` is exactly the live nodes plus the dropped nodes whose
//! memory a kept `WeakGc` still holds (dead boxes).
//! `Upgrade` must succeed exactly when the model says the value is alive
//! (which includes garbage cycles not collected yet: upgrading resurrects them).
//! Every `Drop` also checks that it runs once and that a weak handle to the
//! node being dropped (odd nodes are built with `Gc::new_cyclic` and keep one
//! to themselves) no longer upgrades.
//!
//! `model_exact` runs with automatic collection disabled, so the model predicts
//! everything. `model_auto_collect` runs with automatic collection on and a
//! tiny threshold: there the model absorbs the drops the automatic collections
//! did (checking they only hit unreachable nodes, and that every drop reference
//! counting must do did happen), and everything else is checked as before.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, VecDeque};

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use rcycle::{collect, object_count, Gc, Trace, Tracer, WeakGc};

/// Most nodes one case creates (later `New`s are no-ops).
const MAX_NODES: usize = 64;
/// Most operations in one case.
const MAX_OPS: usize = if cfg!(miri) { 40 } else { 320 };

// ---------------------------------------------------------------------------
// The real nodes.

thread_local! {
    /// Ids of the nodes whose `Drop` ran in this case.
    static DROPPED: RefCell<BTreeSet<usize>> = const { RefCell::new(BTreeSet::new()) };
    /// Ids whose `Drop` ran more than once, or could upgrade a weak handle to
    /// the node being dropped (recorded: `Drop` never panics).
    static DROP_ERRORS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    /// Set while the test itself tears a case down after a failure.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

struct Node {
    id: usize,
    edges: RefCell<Vec<Gc<Node>>>,
    /// Odd ids are made with `Gc::new_cyclic` and point to themselves; even
    /// ids hold `WeakGc::new()`. Either way it must not upgrade in `Drop`.
    me: WeakGc<Node>,
}

/// Whether node `id` holds a weak handle to itself (one more `weak_count`).
fn has_self_weak(id: usize) -> bool {
    id % 2 == 1
}

// SAFETY: reports each owned `Gc` (the elements of `edges`) exactly once,
// through `RefCell<Vec<_>>`'s impl.
unsafe impl Trace for Node {
    fn trace(&self, t: &mut Tracer<'_>) {
        t.field("edges", &self.edges)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if QUIET.with(Cell::get) {
            return;
        }
        let fresh = DROPPED.with(|d| d.borrow_mut().insert(self.id));
        // A value being dropped (by its count reaching zero, or as a member of
        // a collected cycle) can never be reached through a weak handle.
        let upgraded = self.me.upgrade().is_some() || self.me.strong_count() != 0;
        if !fresh || upgraded {
            DROP_ERRORS.with(|d| d.borrow_mut().push(self.id));
        }
    }
}

fn real_dropped() -> BTreeSet<usize> {
    DROPPED.with(|d| d.borrow().clone())
}

// ---------------------------------------------------------------------------
// Operations.

/// Indices are reduced modulo the length of the list they index at the time
/// the operation runs; an operation on an empty list does nothing.
#[derive(Clone, Debug)]
enum Op {
    /// A new node; the test keeps its handle as a root.
    New,
    /// `reachable[a].edges.push(reachable[b].clone())`.
    Link(usize, usize),
    /// `reachable[a].edges.remove(k)`, the removed handle dropped afterwards.
    Unlink(usize, usize),
    /// Drop root handle `i` (`swap_remove`).
    DropHandle(usize),
    /// Push a clone of root handle `i`.
    CloneHandle(usize),
    /// Keep a `WeakGc` to `reachable[i]`.
    Downgrade(usize),
    /// Upgrade kept weak `j`; on success keep the `Gc` as a new root.
    Upgrade(usize),
    /// Drop kept weak `j` (`swap_remove`).
    DropWeak(usize),
    /// `rcycle::collect()`.
    Collect,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let i = || 0..MAX_NODES;
    prop_oneof![
        6 => Just(Op::New),
        8 => (i(), i()).prop_map(|(a, b)| Op::Link(a, b)),
        3 => (i(), i()).prop_map(|(a, k)| Op::Unlink(a, k)),
        5 => i().prop_map(Op::DropHandle),
        2 => i().prop_map(Op::CloneHandle),
        2 => i().prop_map(Op::Downgrade),
        2 => i().prop_map(Op::Upgrade),
        1 => i().prop_map(Op::DropWeak),
        2 => Just(Op::Collect),
    ]
}

fn ops_strategy() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op_strategy(), 0..=MAX_OPS)
}

// ---------------------------------------------------------------------------
// The model.

#[derive(Default)]
struct Model {
    edges: Vec<Vec<usize>>,
    dropped: Vec<bool>,
    roots: Vec<usize>,
    weaks: Vec<usize>,
}

impl Model {
    fn len(&self) -> usize {
        self.edges.len()
    }

    fn live_count(&self) -> usize {
        self.dropped.iter().filter(|&&d| !d).count()
    }

    /// Strong count of every node: root handles plus edges from live nodes.
    fn strong_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.len()];
        for &r in &self.roots {
            c[r] += 1;
        }
        for (n, es) in self.edges.iter().enumerate() {
            if !self.dropped[n] {
                for &e in es {
                    c[e] += 1;
                }
            }
        }
        c
    }

    fn weak_counts(&self) -> Vec<usize> {
        let mut c = vec![0; self.len()];
        for &w in &self.weaks {
            c[w] += 1;
        }
        c
    }

    /// Drops (in the model) every live node whose count is zero, repeatedly.
    fn cascade(&mut self) {
        loop {
            let counts = self.strong_counts();
            let zero: Vec<usize> = (0..self.len())
                .filter(|&n| !self.dropped[n] && counts[n] == 0)
                .collect();
            if zero.is_empty() {
                return;
            }
            for n in zero {
                self.mark_dropped(n);
            }
        }
    }

    fn mark_dropped(&mut self, n: usize) {
        self.dropped[n] = true;
    }

    /// For every node reachable from a root handle: a shortest path to it,
    /// as (root handle index, edge indices).
    fn paths(&self) -> Vec<Option<(usize, Vec<usize>)>> {
        let mut paths: Vec<Option<(usize, Vec<usize>)>> = vec![None; self.len()];
        let mut queue = VecDeque::new();
        for (r, &id) in self.roots.iter().enumerate() {
            if paths[id].is_none() {
                paths[id] = Some((r, Vec::new()));
                queue.push_back(id);
            }
        }
        while let Some(n) = queue.pop_front() {
            assert!(!self.dropped[n], "model bug: reachable node {n} dropped");
            for (k, &m) in self.edges[n].iter().enumerate() {
                if paths[m].is_none() {
                    let (r, mut p) = paths[n].clone().unwrap();
                    p.push(k);
                    paths[m] = Some((r, p));
                    queue.push_back(m);
                }
            }
        }
        paths
    }

    /// Reachable node ids, ascending (what `Link`/`Unlink`/`Downgrade` index).
    fn reachable_ids(paths: &[Option<(usize, Vec<usize>)>]) -> Vec<usize> {
        (0..paths.len()).filter(|&n| paths[n].is_some()).collect()
    }

    fn dropped_set(&self) -> BTreeSet<usize> {
        (0..self.len()).filter(|&n| self.dropped[n]).collect()
    }
}

// ---------------------------------------------------------------------------
// The real side.

#[derive(Default)]
struct World {
    roots: Vec<Gc<Node>>,
    weaks: Vec<WeakGc<Node>>,
}

/// Follows `path` (edge indices) from `start`, checking every id on the way
/// against the model, and calls `f` on the node at its end. Only shared
/// borrows of the nodes on the way are held while `f` runs.
fn walk<R>(
    model: &Model,
    start: &Gc<Node>,
    start_id: usize,
    path: &[usize],
    f: impl FnOnce(&Gc<Node>) -> R,
) -> R {
    assert_eq!(start.id, start_id, "walk: node id differs from the model's");
    match path.split_first() {
        None => f(start),
        Some((&k, rest)) => {
            let edges = start.edges.borrow();
            let next_id = model.edges[start_id][k];
            walk(model, &edges[k], next_id, rest, f)
        }
    }
}

/// Whether the model must match the real drops exactly (`Exact`) or absorbs
/// the drops of automatic collections (`Auto`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Exact,
    Auto,
}

struct Harness {
    model: Model,
    world: World,
    mode: Mode,
    /// `object_count()` when the case started.
    base: usize,
    step: usize,
}

impl Harness {
    fn new(mode: Mode) -> Harness {
        // Clean up whatever an earlier (failed) case left, then start counting.
        QUIET.with(|q| q.set(true));
        collect();
        QUIET.with(|q| q.set(false));
        DROPPED.with(|d| d.borrow_mut().clear());
        DROP_ERRORS.with(|d| d.borrow_mut().clear());
        Harness {
            model: Model::default(),
            world: World::default(),
            mode,
            base: object_count(),
            step: 0,
        }
    }

    fn apply(&mut self, op: &Op) {
        let paths = self.model.paths();
        let reachable = Model::reachable_ids(&paths);
        let m = &mut self.model;
        let w = &mut self.world;
        match *op {
            Op::New => {
                if m.len() < MAX_NODES {
                    let id = m.len();
                    let edges = RefCell::new(Vec::new());
                    w.roots.push(if has_self_weak(id) {
                        Gc::new_cyclic(|me| {
                            assert!(me.upgrade().is_none(), "new_cyclic: upgraded too early");
                            Node {
                                id,
                                edges,
                                me: me.clone(),
                            }
                        })
                    } else {
                        Node {
                            id,
                            edges,
                            me: WeakGc::new(),
                        }
                        .into()
                    });
                    m.edges.push(Vec::new());
                    m.dropped.push(false);
                    m.roots.push(id);
                }
            }
            Op::Link(a, b) => {
                if !reachable.is_empty() {
                    let a = reachable[a % reachable.len()];
                    let b = reachable[b % reachable.len()];
                    let (rb, pb) = paths[b].clone().unwrap();
                    let target = walk(m, &w.roots[rb], m.roots[rb], &pb, Gc::clone);
                    let (ra, pa) = paths[a].clone().unwrap();
                    // `a` is not on its own shortest path, so its `RefCell`
                    // is not borrowed by the walk.
                    walk(m, &w.roots[ra], m.roots[ra], &pa, |g| {
                        g.edges.borrow_mut().push(target)
                    });
                    m.edges[a].push(b);
                }
            }
            Op::Unlink(a, k) => {
                if !reachable.is_empty() {
                    let a = reachable[a % reachable.len()];
                    if !m.edges[a].is_empty() {
                        let k = k % m.edges[a].len();
                        let (ra, pa) = paths[a].clone().unwrap();
                        let removed = walk(m, &w.roots[ra], m.roots[ra], &pa, |g| {
                            g.edges.borrow_mut().remove(k)
                        });
                        let expect = m.edges[a].remove(k);
                        assert_eq!(removed.id, expect, "Unlink removed the wrong edge");
                        drop(removed); // no borrow held: may cascade or collect
                        m.cascade();
                    }
                }
            }
            Op::DropHandle(i) => {
                if !w.roots.is_empty() {
                    let i = i % w.roots.len();
                    drop(w.roots.swap_remove(i));
                    m.roots.swap_remove(i);
                    m.cascade();
                }
            }
            Op::CloneHandle(i) => {
                if !w.roots.is_empty() {
                    let i = i % w.roots.len();
                    let g = w.roots[i].clone();
                    w.roots.push(g);
                    m.roots.push(m.roots[i]);
                }
            }
            Op::Downgrade(i) => {
                if !reachable.is_empty() {
                    let n = reachable[i % reachable.len()];
                    let (r, p) = paths[n].clone().unwrap();
                    let weak = walk(m, &w.roots[r], m.roots[r], &p, Gc::downgrade);
                    w.weaks.push(weak);
                    m.weaks.push(n);
                }
            }
            Op::Upgrade(j) => {
                if !w.weaks.is_empty() {
                    let j = j % w.weaks.len();
                    let n = m.weaks[j];
                    let got = w.weaks[j].upgrade();
                    assert_eq!(
                        got.is_some(),
                        !m.dropped[n],
                        "Upgrade of a weak to node {n}: the model says its value is {}",
                        if m.dropped[n] { "dropped" } else { "alive" }
                    );
                    if let Some(g) = got {
                        assert_eq!(g.id, n, "upgraded weak points to the wrong node");
                        w.roots.push(g);
                        m.roots.push(n);
                    }
                }
            }
            Op::DropWeak(j) => {
                if !w.weaks.is_empty() {
                    let j = j % w.weaks.len();
                    drop(w.weaks.swap_remove(j));
                    m.weaks.swap_remove(j);
                }
            }
            Op::Collect => {
                if self.mode == Mode::Auto {
                    // Absorb what automatic collections did before this call.
                    Self::absorb(m, self.step);
                }
                let paths = m.paths();
                let garbage: Vec<usize> = (0..m.len())
                    .filter(|&n| !m.dropped[n] && paths[n].is_none())
                    .collect();
                let freed = collect();
                assert_eq!(
                    freed,
                    garbage.len(),
                    "collect() returned {freed}, but the live unreachable nodes were {garbage:?}"
                );
                for n in garbage {
                    m.mark_dropped(n);
                }
                m.cascade(); // a no-op: live nodes are all reachable now
            }
        }
        self.step += 1;
        self.check();
    }

    /// In `Auto` mode: takes the drops automatic collections did into the
    /// model, after checking they only hit unreachable nodes.
    fn absorb(m: &mut Model, step: usize) {
        let real = real_dropped();
        let paths = m.paths();
        let bad: Vec<usize> = real
            .iter()
            .copied()
            .filter(|&n| paths[n].is_some())
            .collect();
        assert!(
            bad.is_empty(),
            "step {step}: the values of reachable nodes {bad:?} were dropped"
        );
        for n in real {
            if !m.dropped[n] {
                m.mark_dropped(n);
            }
        }
        m.cascade();
    }

    fn check(&mut self) {
        let step = self.step;
        let doubles = DROP_ERRORS.with(|d| d.borrow().clone());
        assert!(
            doubles.is_empty(),
            "step {step}: Drop ran twice, or upgraded its own weak, for nodes {doubles:?}"
        );
        if self.mode == Mode::Auto {
            Self::absorb(&mut self.model, step);
        }
        let m = &self.model;
        let w = &self.world;

        // 1. Exactly the nodes the model dropped have been dropped.
        let real = real_dropped();
        let expect = m.dropped_set();
        if real != expect {
            let paths = m.paths();
            let dropped_reachable: Vec<_> = real
                .difference(&expect)
                .filter(|&&n| paths[n].is_some())
                .collect();
            let dropped_early: Vec<_> = real
                .difference(&expect)
                .filter(|&&n| paths[n].is_none())
                .collect();
            let not_dropped: Vec<_> = expect.difference(&real).collect();
            panic!(
                "step {step}: drops differ from the model.\n  \
                 REACHABLE nodes dropped (unsound): {dropped_reachable:?}\n  \
                 unreachable nodes dropped before a collect: {dropped_early:?}\n  \
                 nodes the model dropped whose Drop did not run: {not_dropped:?}\n  \
                 model edges: {:?}\n  roots: {:?}",
                m.edges, m.roots
            );
        }

        // 2. Walk the real graph from the root handles: every value readable,
        //    ids, edge lists and counts as in the model.
        let strong = m.strong_counts();
        let weak = m.weak_counts();
        let mut seen = vec![false; m.len()];
        let ctx = Expect {
            model: m,
            strong: &strong,
            weak: &weak,
            step,
        };
        for (i, g) in w.roots.iter().enumerate() {
            ctx.visit(g, m.roots[i], &mut seen);
        }
        let paths = m.paths();
        for n in 0..m.len() {
            assert_eq!(
                seen[n],
                paths[n].is_some(),
                "step {step}: reachability of node {n}"
            );
        }

        // 3. Every kept weak handle sees the model's strong count.
        for (j, wk) in w.weaks.iter().enumerate() {
            let n = m.weaks[j];
            let expect = if m.dropped[n] { 0 } else { strong[n] };
            assert_eq!(
                wk.strong_count(),
                expect,
                "step {step}: WeakGc::strong_count of node {n}"
            );
        }

        // 4. object_count(): the live nodes plus the dropped nodes whose
        //    memory a kept `WeakGc` still holds (dead boxes), nothing else.
        let held = (0..m.len())
            .filter(|&n| m.dropped[n] && weak[n] > 0)
            .count();
        let count = object_count();
        assert_eq!(
            count,
            self.base + m.live_count() + held,
            "step {step}: object_count(): expected base {} + {} live nodes + {held} dropped nodes held by weaks",
            self.base,
            m.live_count()
        );
    }

    /// Drops every handle, collects, and checks the heap is back where the
    /// case started.
    fn finish(mut self) {
        self.world.roots.clear();
        self.world.weaks.clear();
        let live_before = {
            let m = &mut self.model;
            m.roots.clear();
            m.weaks.clear();
            if self.mode == Mode::Auto {
                Self::absorb(m, self.step);
            } else {
                m.cascade();
            }
            m.live_count()
        };
        let freed = collect();
        assert_eq!(
            freed, live_before,
            "final collect() freed {freed} of {live_before} live nodes"
        );
        let all: BTreeSet<usize> = (0..self.model.len()).collect();
        assert_eq!(
            real_dropped(),
            all,
            "after the final collect, every node must be dropped"
        );
        let doubles = DROP_ERRORS.with(|d| d.borrow().clone());
        assert!(
            doubles.is_empty(),
            "Drop ran twice, or upgraded its own weak, for nodes {doubles:?}"
        );
        assert_eq!(
            object_count(),
            self.base,
            "object_count() after the final collect"
        );
    }
}

/// What the checking walk compares the real graph with.
struct Expect<'a> {
    model: &'a Model,
    strong: &'a [usize],
    weak: &'a [usize],
    step: usize,
}

impl Expect<'_> {
    /// Depth-first walk of the real graph from `g`, which the model says is
    /// node `id`. Recursion depth is at most `MAX_NODES`.
    fn visit(&self, g: &Gc<Node>, id: usize, seen: &mut [bool]) {
        let step = self.step;
        let node: &Node = Gc::try_deref(g)
            .unwrap_or_else(|| panic!("step {step}: node {id} is reachable but its value is gone"));
        assert_eq!(node.id, id, "step {step}: a handle leads to the wrong node");
        if std::mem::replace(&mut seen[id], true) {
            return;
        }
        assert_eq!(
            Gc::strong_count(g),
            self.strong[id],
            "step {step}: strong_count of node {id}"
        );
        assert_eq!(
            Gc::weak_count(g),
            self.weak[id] + usize::from(has_self_weak(id)),
            "step {step}: weak_count of node {id}"
        );
        let edges = node.edges.borrow();
        let ids: Vec<usize> = edges.iter().map(|e| e.id).collect();
        assert_eq!(ids, self.model.edges[id], "step {step}: edges of node {id}");
        for (e, &eid) in edges.iter().zip(&self.model.edges[id]) {
            self.visit(e, eid, seen);
        }
    }
}

fn run(mode: Mode, ops: &[Op]) {
    let mut h = Harness::new(mode);
    h.check();
    for op in ops {
        h.apply(op);
    }
    h.finish();
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Miri runs isolated from the file system.
        failure_persistence: if cfg!(miri) {
            None
        } else {
            ProptestConfig::default().failure_persistence
        },
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(if cfg!(miri) { 16 } else { 2000 }))]

    /// Automatic collection off: the model predicts every drop, every
    /// `collect()` result, every upgrade and every count exactly.
    #[test]
    fn model_exact(ops in ops_strategy()) {
        rcycle::disable();
        run(Mode::Exact, &ops);
        rcycle::enable();
    }
}

proptest! {
    #![proptest_config(config(if cfg!(miri) { 8 } else { 2000 }))]

    /// Automatic collection on with a tiny threshold: never a reachable node
    /// dropped, every value readable, explicit `collect()` still exact, and
    /// a clean heap at the end.
    #[test]
    fn model_auto_collect(threshold in 1usize..=8, ops in ops_strategy()) {
        rcycle::enable();
        rcycle::set_threshold(threshold);
        run(Mode::Auto, &ops);
        rcycle::set_threshold(10_000);
    }
}
