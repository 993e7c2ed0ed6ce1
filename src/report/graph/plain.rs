//! The heap's edges without labels, sizes or user code: what the search
//! for the chain that keeps an object alive needs
//! ([`why_alive`](crate::why_alive)), at the cost of one plain trace of
//! every object.
//!
//! Its nodes are the builder's ([`Nodes::whole_heap`]: in address order,
//! numbered through the headers' scratch words while the heap is quiesced,
//! else through a hash map), and it traces each value in the
//! collector's plain mode, which runs no user code but `Trace::trace` and
//! formats no label. Its shortest chain is the graph's
//! ([`HeapGraph::shortest_chain`](super::HeapGraph::shortest_chain)): the
//! same nodes, the same edges in the same order, the same search.

use std::ptr::NonNull;

use crate::header::{Header, ACYCLIC};
use crate::heap::Heap;
use crate::report::big_vec::BigVec;
use crate::trace::{EdgeSink, Tracer};

use super::nodes::{Nodes, Walk};

/// Every object (strong > 0) and edge of the heap, numbered in address
/// order; no handle held.
pub(crate) struct PlainGraph {
    /// The nodes' headers, in address order.
    pub(crate) addr: BigVec<NonNull<Header>>,
    out_start: BigVec<u32>,
    out_target: BigVec<u32>,
    /// Strong counts, with [`UNTRACEABLE`] for a node whose edges are
    /// unknown.
    strong: BigVec<u32>,
}

/// `strong` bit: the node's edges are unknown (a value lent out, or a
/// `RefCell` mutably borrowed). Strong counts stay below it (they are
/// `u32`s that would overflow long before: one `Gc` is 8 bytes).
const UNTRACEABLE: u32 = 1 << 31;

/// Collects one object's edges; `resolve` gives the node of an edge's
/// target (`None`: an object being dropped right now, not in the graph).
struct PlainSink<R> {
    resolve: R,
    out_target: BigVec<u32>,
}

impl<R: FnMut(NonNull<Header>) -> Option<u32>> EdgeSink for PlainSink<R> {
    #[inline]
    fn edge(&mut self, target: NonNull<Header>, _path: &str) {
        if let Some(t) = (self.resolve)(target) {
            self.out_target.push(t);
        }
    }
}

/// Counts and edges of every node (live objects, nothing freed since they
/// were listed): `out_start`, `out_target` and `strong` of a [`PlainGraph`].
struct TraceAll<'a> {
    heap: &'a Heap,
}

impl Walk for TraceAll<'_> {
    type Out = (BigVec<u32>, BigVec<u32>, BigVec<u32>);

    fn run(
        self,
        nodes: &Nodes<'_>,
        resolve: impl FnMut(NonNull<Header>) -> Option<u32>,
    ) -> Self::Out {
        let mut out_start = BigVec::with_capacity(nodes.len() + 1);
        let mut strong_of = BigVec::with_capacity(nodes.len());
        let mut sink = PlainSink {
            resolve,
            out_target: BigVec::with_capacity(nodes.len()),
        };
        for &header in &nodes.addr {
            out_start.push(sink.out_target.len() as u32);
            // SAFETY: a listed node: live (strong > 0 when listed; only
            // `Trace` code, which drops no handle, ran since).
            let h = unsafe { header.as_ref() };
            let dead = !h.value_alive();
            let readable = h.value_readable();
            // As the capture records it: a value lent out by a `GcMut` is
            // not read, its edges are unknown.
            let mut untraceable = !dead && !readable;
            if readable && !h.has(ACYCLIC) {
                let trace = self.heap.type_entry(h.type_index()).info.trace;
                let mut tracer = Tracer::new(&mut sink, None);
                // SAFETY: the value is intact and not lent out, and stays
                // so: no user code runs here but `Trace::trace`, which
                // mutates nothing and drops no handle; the sink reads
                // headers only.
                unsafe { trace(header, &mut tracer) };
                untraceable = !tracer.is_complete();
            }
            let strong = h.strong().min(UNTRACEABLE - 1);
            strong_of.push(strong | if untraceable { UNTRACEABLE } else { 0 });
        }
        let out_target = sink.out_target;
        // Edge numbers fit in a `u32` below `shortest_chain`'s sentinels.
        assert!(
            out_target.len() < u32::MAX as usize - 1,
            "too many edges for a PlainGraph"
        );
        out_start.push(out_target.len() as u32);
        (out_start, out_target, strong_of)
    }
}

impl PlainGraph {
    /// The graph of `heap` now. Runs no user code but `Trace::trace`.
    pub(crate) fn capture(heap: &Heap) -> PlainGraph {
        let mut nodes = Nodes::whole_heap(heap);
        let (out_start, out_target, strong) = nodes.walk(TraceAll { heap });
        nodes.end_numbering();
        PlainGraph {
            addr: nodes.into_addr(),
            out_start,
            out_target,
            strong,
        }
    }

    /// The node of the object at `header`, if it is one.
    pub(crate) fn find(&self, header: NonNull<Header>) -> Option<usize> {
        self.addr.binary_search(&header).ok()
    }

    /// The chain [`HeapGraph::shortest_chain`](super::HeapGraph::shortest_chain)
    /// finds, as `(object, ordinal of the edge to the next link in the
    /// object's trace)` (`None` for the last): a multi-source breadth-first search
    /// from every node held from outside (strong count above its in-edges,
    /// `ignore_handles` of `target`'s own not counted) or untraceable, in
    /// node order, edges in trace order, first parent wins.
    pub(crate) fn shortest_chain(
        mut self,
        target: usize,
        ignore_handles: u32,
    ) -> Option<Vec<(NonNull<Header>, Option<u32>)>> {
        // `parent[v]`: the edge that reached `v`, or one of these (edge
        // numbers stay below them: `trace_all` checks).
        const UNSEEN: u32 = u32::MAX;
        const HOLDER: u32 = u32::MAX - 1;
        let n = self.addr.len();
        // Outside counts in place of the strong counts: each in-edge takes
        // one off (saturating, as `saturating_sub` of the in-degree would).
        for &t in &self.out_target {
            let s = &mut self.strong[t as usize];
            if *s & !UNTRACEABLE != 0 {
                *s -= 1;
            }
        }
        let mut parent = BigVec::filled(UNSEEN, n);
        // A FIFO queue: each node is pushed at most once.
        let mut queue: BigVec<u32> = BigVec::new();
        for (i, p) in parent.iter_mut().enumerate() {
            let s = self.strong[i];
            let mut outside = s & !UNTRACEABLE;
            if i == target {
                outside = outside.saturating_sub(ignore_handles);
            }
            if outside > 0 || s & UNTRACEABLE != 0 {
                *p = HOLDER;
                queue.push(i as u32);
            }
        }
        drop(std::mem::take(&mut self.strong));
        let mut head = 0;
        while let Some(&u) = queue.get(head) {
            head += 1;
            let u = u as usize;
            if u == target {
                break;
            }
            for e in self.out_start[u] as usize..self.out_start[u + 1] as usize {
                let t = self.out_target[e] as usize;
                if parent[t] == UNSEEN {
                    parent[t] = e as u32;
                    queue.push(t as u32);
                }
            }
        }
        drop(queue);
        if parent[target] == UNSEEN {
            return None;
        }
        let mut chain = vec![(self.addr[target], None)];
        let mut u = target;
        while parent[u] != HOLDER {
            let e = parent[u] as usize;
            let source = self.out_start.partition_point(|&s| s as usize <= e) - 1;
            let ordinal = (e - self.out_start[source] as usize) as u32;
            chain.push((self.addr[source], Some(ordinal)));
            u = source;
        }
        chain.reverse();
        Some(chain)
    }
}
