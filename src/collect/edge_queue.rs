//! Marking a scattered graph: edges whose targets are asked for before they
//! are counted.
//!
//! Marking reads the header of every edge's target (its trial count, and
//! whether it is in the table yet). When the targets lie far from the node
//! that points at them, as in a graph whose edges were added in random order,
//! each of those reads is a cache miss, and marking waits for it before it
//! can go on to the next edge. [`QueuedSink`] takes an edge, asks for its
//! target's header line, and counts it only [`QUEUE_LEN`] edges later, by
//! which time the line has had the time to arrive.
//!
//! When the targets lie near their source (a list or a ring allocated in
//! order, small cycles whose members were allocated together), the hardware
//! already has their lines, and the queue is only extra work: measured, it
//! made such graphs 2-15% slower, and any extra test on the direct path cost
//! them 2-3% too (benches/notes.md, change 26). So marking works in windows
//! of [`WINDOW`] nodes: it traces the first nodes of each window with the
//! direct sink or the queue, and the last [`PROBES`] with a [`ProbeSink`],
//! which counts how many of their edges lie more than [`DISTANT`] bytes
//! from their source. That count chooses the next window's sink.
//!
//! Counting an edge later is sound because marking runs no code that can
//! drop or move a handle: `trace` may not (the `Trace` contract), so every
//! handle reported stays alive, and its target's header readable, until the
//! pass ends. The order in which edges are counted changes neither the trial
//! counts nor the set of nodes found.

use std::ptr::NonNull;

use super::prefetch::prefetch;
use crate::header::Header;
use crate::trace::EdgeSink;

/// Nodes per window: each window's sink is chosen by the window before it.
pub(super) const WINDOW: usize = 64;
/// Nodes at the end of each window traced by the probe.
pub(super) const PROBES: usize = 4;
/// Edges held back before they are counted: enough for a line to arrive
/// from memory while the edges before it are counted.
const QUEUE_LEN: usize = 8;
/// A target farther than this from its source counts as distant (the hardware
/// prefetchers do not follow strides beyond a page).
const DISTANT: usize = 4096;

/// The edges [`QueuedSink`] holds back.
///
/// # Invariant
/// Slots `pushed - QUEUE_LEN.min(pushed) .. pushed` (modulo `QUEUE_LEN`)
/// hold edges reported in the running mark pass and not counted yet; their
/// targets are live objects (see the module's comment). Empty
/// (`pushed == 0`) outside a mark pass.
pub(super) struct EdgeQueue {
    pending: [NonNull<Header>; QUEUE_LEN],
    /// Edges pushed since the queue was last empty.
    pushed: usize,
}

impl Default for EdgeQueue {
    fn default() -> EdgeQueue {
        EdgeQueue {
            pending: [NonNull::dangling(); QUEUE_LEN],
            pushed: 0,
        }
    }
}

impl EdgeQueue {
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.pushed == 0
    }

    /// Counts every held-back edge with `direct`, oldest first.
    pub fn drain(&mut self, direct: &mut impl EdgeSink) {
        for k in self.pushed.saturating_sub(QUEUE_LEN)..self.pushed {
            direct.edge(self.pending[k % QUEUE_LEN], "");
        }
        self.pushed = 0;
    }

    /// Forgets the held-back edges (the mark pass was abandoned by a panic).
    pub fn clear(&mut self) {
        self.pushed = 0;
    }
}

/// Holds each edge back in an [`EdgeQueue`] and asks for its target's header;
/// the edge `QUEUE_LEN` places earlier goes to `direct`.
pub(super) struct QueuedSink<'a, S> {
    pub direct: S,
    pub queue: &'a mut EdgeQueue,
}

impl<S: EdgeSink> EdgeSink for QueuedSink<'_, S> {
    #[inline]
    fn edge(&mut self, target: NonNull<Header>, _path: &str) {
        prefetch(target.as_ptr().cast());
        let q = &mut *self.queue;
        let oldest = std::mem::replace(&mut q.pending[q.pushed % QUEUE_LEN], target);
        q.pushed += 1;
        if q.pushed > QUEUE_LEN {
            self.direct.edge(oldest, "");
        }
    }
}

/// Passes every edge to `direct`, counting the edges whose target lies
/// far from `source`, the node being traced.
pub(super) struct ProbeSink<S> {
    pub direct: S,
    pub source: NonNull<Header>,
    distant: usize,
    edges: usize,
}

impl<S> ProbeSink<S> {
    pub fn new(direct: S) -> ProbeSink<S> {
        ProbeSink {
            direct,
            source: NonNull::dangling(),
            distant: 0,
            edges: 0,
        }
    }

    /// The edges seen.
    pub fn edges(&self) -> usize {
        self.edges
    }

    /// Whether most edges seen lay far from their source (none seen: no).
    pub fn mostly_distant(&self) -> bool {
        self.distant * 2 > self.edges
    }
}

impl<S: EdgeSink> EdgeSink for ProbeSink<S> {
    #[inline]
    fn edge(&mut self, target: NonNull<Header>, path: &str) {
        let gap = (target.as_ptr() as usize).abs_diff(self.source.as_ptr() as usize);
        self.distant += usize::from(gap > DISTANT);
        self.edges += 1;
        self.direct.edge(target, path);
    }
}

#[cfg(test)]
thread_local! {
    /// Windows marked `[direct, queued]` on this thread, then how many of
    /// the queued ones counted their edges without branches; for the tests.
    static WINDOWS: std::cell::Cell<[usize; 3]> = const { std::cell::Cell::new([0; 3]) };
}

/// Counts a window marked queued or direct, and without branches or not
/// (tests only).
#[cfg(test)]
pub(super) fn count_window(queued: bool, coin_toss: bool) {
    WINDOWS.with(|w| {
        let mut n = w.get();
        n[usize::from(queued)] += 1;
        n[2] += usize::from(queued && coin_toss);
        w.set(n);
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Gc, Trace, Tracer};
    use std::cell::RefCell;

    /// Records the edges it is given.
    struct Record(Vec<usize>);

    impl EdgeSink for Record {
        fn edge(&mut self, target: NonNull<Header>, _path: &str) {
            self.0.push(target.as_ptr() as usize);
        }
    }

    fn fake(n: usize) -> NonNull<Header> {
        // Never dereferenced: the sinks under test only pass pointers on
        // (and prefetch them, which reads nothing).
        NonNull::new(std::ptr::without_provenance_mut(n * 4096)).unwrap()
    }

    #[test]
    fn the_queue_passes_every_edge_on_once_in_order() {
        for n in [0, 1, 7, 8, 9, 20] {
            let mut queue = EdgeQueue::default();
            let mut sink = QueuedSink {
                direct: Record(Vec::new()),
                queue: &mut queue,
            };
            for k in 1..=n {
                sink.edge(fake(k), "");
            }
            let held = n.min(QUEUE_LEN);
            assert_eq!(sink.direct.0.len(), n - held, "{n} edges");
            let mut direct = sink.direct;
            assert_eq!(queue.is_empty(), n == 0);
            queue.drain(&mut direct);
            assert!(queue.is_empty());
            let expected: Vec<usize> = (1..=n).map(|k| fake(k).as_ptr() as usize).collect();
            assert_eq!(direct.0, expected, "{n} edges");
        }
    }

    #[test]
    fn the_probe_counts_distant_edges() {
        let mut probe = ProbeSink::new(Record(Vec::new()));
        assert!(!probe.mostly_distant(), "no edge seen");
        probe.source = fake(10);
        let near = NonNull::new(std::ptr::without_provenance_mut(10 * 4096 + 80)).unwrap();
        probe.edge(near, "");
        probe.edge(fake(20), "");
        assert!(!probe.mostly_distant(), "one of two");
        probe.edge(fake(1), "");
        assert!(probe.mostly_distant(), "two of three");
        assert_eq!(probe.direct.0.len(), 3);
    }

    thread_local! {
        static DROPPED: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    }

    struct Node {
        id: usize,
        edges: RefCell<Vec<Gc<Node>>>,
    }

    // SAFETY: reports the one field that owns handles.
    unsafe impl Trace for Node {
        fn trace(&self, tracer: &mut Tracer<'_>) {
            tracer.field("edges", &self.edges);
        }
    }

    impl Drop for Node {
        fn drop(&mut self) {
            // `try_with`: after a failed assertion, the thread's teardown
            // frees what is left once the list is gone.
            let _ = DROPPED.try_with(|d| d.borrow_mut().push(self.id));
        }
    }

    /// `n` nodes without edges, with ids `0..n`, allocated in that order.
    fn new_nodes(n: usize) -> Vec<Gc<Node>> {
        (0..n)
            .map(|id| {
                Gc::new(Node {
                    id,
                    edges: RefCell::new(Vec::new()),
                })
            })
            .collect()
    }

    /// The next number of a xorshift sequence (deterministic test graphs).
    fn xorshift(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    /// `n` nodes (see [`new_nodes`]), each with two edges to nodes drawn at
    /// random from `seed`, and the model of those edges (`edges[a]`: the ids
    /// node `a` points to, in order).
    fn two_edges_each(n: usize, seed: u64) -> (Vec<Gc<Node>>, Vec<Vec<usize>>) {
        let nodes = new_nodes(n);
        let mut edges = vec![Vec::new(); n];
        let mut x = seed;
        for (a, targets) in edges.iter_mut().enumerate() {
            for _ in 0..2 {
                let b = (xorshift(&mut x) % n as u64) as usize;
                nodes[a].edges.borrow_mut().push(nodes[b].clone());
                targets.push(b);
            }
        }
        (nodes, edges)
    }

    /// Objects reachable from `roots` through `edges` (the model).
    fn reachable(edges: &[Vec<usize>], roots: &[usize]) -> Vec<bool> {
        let mut seen = vec![false; edges.len()];
        let mut work = roots.to_vec();
        while let Some(n) = work.pop() {
            if !std::mem::replace(&mut seen[n], true) {
                work.extend(&edges[n]);
            }
        }
        seen
    }

    /// A random graph's edges mostly point far away, so marking goes through
    /// the queue; the collection must still free exactly the objects no root
    /// reaches, and every other object must survive it.
    #[test]
    fn a_scattered_graph_is_marked_through_the_queue_and_freed_exactly() {
        const N: usize = if cfg!(miri) { 600 } else { 20_000 };
        crate::disable();
        DROPPED.with(|d| d.borrow_mut().clear());
        let nodes = new_nodes(N);
        let mut edges = vec![Vec::new(); N];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut below = |n: usize| (xorshift(&mut x) % n as u64) as usize;
        for _ in 0..N {
            let (a, b) = (below(N), below(N));
            nodes[a].edges.borrow_mut().push(nodes[b].clone());
            edges[a].push(b);
        }
        let roots: Vec<usize> = (0..N).step_by(50).collect();
        let alive = reachable(&edges, &roots);
        let kept: Vec<Gc<Node>> = roots.iter().map(|&r| nodes[r].clone()).collect();
        drop(nodes);
        // What no handle points to any more went at once, by counting.
        let by_count = DROPPED.with(|d| d.borrow().len());
        let [_, queued_before, _] = WINDOWS.with(|w| w.get());
        let freed = crate::collect();
        let [_, queued_after, _] = WINDOWS.with(|w| w.get());
        crate::enable();
        assert!(queued_after > queued_before, "the queue was never used");
        let dead = alive.iter().filter(|&&a| !a).count();
        assert_eq!(freed + by_count, dead);
        let mut dropped = DROPPED.with(|d| std::mem::take(&mut *d.borrow_mut()));
        dropped.sort_unstable();
        let expected: Vec<usize> = (0..N).filter(|&n| !alive[n]).collect();
        assert_eq!(dropped, expected);
        // The survivors are intact: every edge still leads where it did.
        for (&r, node) in roots.iter().zip(&kept) {
            assert_eq!(node.id, r);
            let targets: Vec<usize> = node.edges.borrow().iter().map(|t| t.id).collect();
            assert_eq!(targets, edges[r]);
        }
        drop(kept);
        crate::collect();
        assert_eq!(DROPPED.with(|d| d.borrow().len()), N - dead);
    }

    /// A random graph, a third of its nodes held from outside: each
    /// collection's roots reach held nodes (new to the table) and other
    /// roots (known) alike, so marking counts the queued windows' edges
    /// without branches, and the scan walks without branches too
    /// (`super::super::branching`). Each collection must still free exactly
    /// what no held node reaches. Two collections, so that debug builds
    /// (which alternate the scan's two walks) run both walks.
    #[test]
    fn a_scattered_graph_is_collected_exactly_without_branches() {
        use super::super::branching::scans;
        const N: usize = if cfg!(miri) { 600 } else { 20_000 };
        crate::disable();
        DROPPED.with(|d| d.borrow_mut().clear());
        let (nodes, edges) = two_edges_each(N, 0x51_7CC1_B727_220A);
        // The held nodes keep the handles they had (their counts do not
        // drop, so they are no candidates); the others lose theirs.
        let mut held: Vec<(usize, Gc<Node>)> = Vec::new();
        for (id, node) in nodes.into_iter().enumerate() {
            if id % 3 == 0 {
                held.push((id, node));
            }
        }
        let [_, _, coin_toss_before] = WINDOWS.with(|w| w.get());
        let scans_before = scans()[1];
        for round in 0..2 {
            if round == 1 {
                // Let go of every other held node.
                held.retain(|&(id, _)| id % 2 == 0);
            }
            crate::collect();
            let roots: Vec<usize> = held.iter().map(|&(id, _)| id).collect();
            let alive = reachable(&edges, &roots);
            let mut dropped = DROPPED.with(|d| d.borrow().clone());
            dropped.sort_unstable();
            let expected: Vec<usize> = (0..N).filter(|&n| !alive[n]).collect();
            assert_eq!(dropped, expected, "round {round}");
        }
        let [_, _, coin_toss_after] = WINDOWS.with(|w| w.get());
        assert!(
            coin_toss_after > coin_toss_before,
            "no window went without branches"
        );
        assert!(
            scans()[1] >= scans_before + 2,
            "a scan walked with branches"
        );
        drop(held);
        crate::collect();
        assert_eq!(DROPPED.with(|d| d.borrow().len()), N);
        crate::enable();
    }

    /// Marking from a few roots of a random graph, through the queue: the
    /// table must end up holding exactly what the roots reach, each with its
    /// strong count less its edges from the table as trial count, so that no
    /// held-back edge is lost or counted twice.
    #[test]
    fn marking_through_the_queue_counts_every_edge_once() {
        use super::super::subgraph::Subgraph;
        use crate::header::VISITED;
        const N: usize = if cfg!(miri) { 600 } else { 20_000 };
        crate::disable();
        let (nodes, edges) = two_edges_each(N, 0x2545_F491_4F6C_DD1D);
        let roots: Vec<usize> = (0..N).step_by(97).collect();
        let in_table = reachable(&edges, &roots);
        let mut from_table = vec![0u32; N];
        for (a, targets) in edges.iter().enumerate() {
            if in_table[a] {
                for &b in targets {
                    from_table[b] += 1;
                }
            }
        }
        let [_, queued_before, _] = WINDOWS.with(|w| w.get());
        let mut subgraph = Subgraph::default();
        for &r in &roots {
            subgraph.add(nodes[r].header_ptr());
        }
        subgraph.mark(crate::runtime::heap(), super::super::Reach::Discover);
        let [_, queued_after, _] = WINDOWS.with(|w| w.get());
        assert!(queued_after > queued_before, "the queue was never used");
        let mut found: Vec<usize> = Vec::new();
        for (id, node) in nodes.iter().enumerate() {
            let h = node.header();
            assert_eq!(h.has(VISITED), in_table[id], "node {id} in the table");
            if in_table[id] {
                found.push(id);
                let expected = h.strong() - from_table[id];
                assert_eq!(h.scratch(), expected, "trial count of node {id}");
            }
        }
        assert_eq!(subgraph.nodes.len(), found.len());
        drop(subgraph);
        assert!(nodes.iter().all(|n| !n.header().has(VISITED)));
        for n in &nodes {
            n.edges.borrow_mut().clear();
        }
        drop(nodes);
        crate::enable();
    }
}
