//! The capture of a [`HeapGraph`]: every object and edge of the heap, in
//! two passes (see [`HeapGraph::capture_from`]).

use std::ptr::NonNull;
use std::sync::OnceLock;

use crate::addr_map::AddrMap;
use crate::collect::{HoldMemory, Quiesced};
use crate::gc::ErasedGc;
use crate::header::{Header, ACYCLIC, VISITED};
use crate::heap::Heap;
use crate::trace::{EdgeSink, LabelPath, Tracer};

use super::columns::{Columns, DEAD, UNTRACEABLE_NODE};
use super::labels::{EdgeLabels, Interner};
use super::{HeapGraph, WHOLE};

/// The first pass's edges and labels.
pub(super) struct Edges {
    pub(super) start: Vec<u32>,
    pub(super) target: Vec<u32>,
    pub(super) label: EdgeLabels,
    pub(super) interner: Interner,
    /// Nodes with an edge through a map key, in order (their labels are
    /// made by a second, labelled trace).
    pub(super) keyed: Vec<u32>,
}

impl Edges {
    /// Adds an edge of the node being traced (the last `start`).
    pub(super) fn push(&mut self, target: u32, text: u32, index: u32) {
        let pos = self.target.len() - *self.start.last().unwrap_or(&0) as usize;
        self.target.push(target);
        self.label.push(text, index, pos);
    }
}

/// Collects one object's edges in the first pass; `resolve` gives the node
/// of an edge's target (`None`: an object being dropped right now, not in
/// the snapshot).
pub(super) struct CaptureSink<'a, R> {
    pub(super) resolve: R,
    pub(super) edges: &'a mut Edges,
    pub(super) keyed: bool,
}

impl<R: FnMut(NonNull<Header>) -> Option<u32>> EdgeSink for CaptureSink<'_, R> {
    fn edge(&mut self, target: NonNull<Header>, path: &str) {
        // (Only a tracer without a path calls this; the capture's has one.)
        if let Some(t) = (self.resolve)(target) {
            let l = self.edges.interner.intern(path, WHOLE);
            self.edges.push(t, l, WHOLE);
        }
    }

    fn edge_path(&mut self, target: NonNull<Header>, path: &LabelPath) {
        let Some(t) = (self.resolve)(target) else {
            return;
        };
        self.keyed |= path.has_key();
        let (l, i) = self.edges.interner.label_of(path);
        self.edges.push(t, l, i);
    }
}

/// Relabels one node's edges in the second, labelled pass (keys formatted
/// with their `Debug`): the `k`-th edge to a node must be the first pass's
/// `k`-th, else (user code changed the value meanwhile) the rest keep their
/// first-pass labels.
pub(super) struct KeySink<'a> {
    pub(super) addrs: &'a [usize],
    /// The node's edges: their targets, and the position of the first.
    pub(super) targets: &'a [u32],
    pub(super) first: usize,
    pub(super) labels: &'a mut EdgeLabels,
    pub(super) interner: &'a mut Interner,
    pub(super) k: usize,
}

impl EdgeSink for KeySink<'_> {
    fn edge(&mut self, target: NonNull<Header>, path: &str) {
        let Some(t) = find_in(self.addrs, target.as_ptr() as usize) else {
            return;
        };
        if self.targets.get(self.k) != Some(&(t as u32)) {
            self.k = usize::MAX - 1; // out of step: stop here
            return;
        }
        let text = self.interner.intern(path, WHOLE);
        self.labels.code[self.first + self.k] = self.labels.encode(text, WHOLE, self.k);
        self.k += 1;
    }
}

/// The node at address `addr` in `addrs` (ascending).
pub(super) fn find_in(addrs: &[usize], addr: usize) -> Option<usize> {
    addrs.binary_search(&addr).ok()
}

/// Clears `VISITED` on every node at the end of the first pass, on every
/// path (a panic in user `Trace` code included).
pub(super) struct Numbered<'a>(&'a [NonNull<Header>]);

impl Drop for Numbered<'_> {
    fn drop(&mut self) {
        for h in self.0 {
            // SAFETY: nodes are live (strong > 0 when enumerated, and only
            // `Trace` code, which drops no handle, ran since).
            unsafe { h.as_ref() }.clear(VISITED);
        }
    }
}

impl HeapGraph {
    /// The capture, in two passes.
    ///
    /// 1. Every object, in address order, with its counts and its edges,
    ///    traced with a *template* path ([`LabelPath::template`]): no key is
    ///    formatted, so no user code runs but `Trace::trace`, which by its
    ///    unsafe contract mutates nothing and drops no handle. Each edge's
    ///    target becomes a node number through the target's own header:
    ///    while the heap is [`Quiesced`] (no collection runs, the candidate
    ///    buffer is set aside, so no object is `BUFFERED`), each node gets
    ///    `VISITED` and its number in its `scratch` word; an edge to an
    ///    object without `VISITED` (one being dropped) is left out. No hash
    ///    lookup per edge. `VISITED` is cleared on every node and the buffer
    ///    restored before the pass returns (on a panic too). Inside a
    ///    collection or a dry run (user code there asking for a report),
    ///    whose objects may carry `VISITED`, the pass looks targets up in a
    ///    hash map of addresses instead, touching no header.
    /// 2. With every node's memory held ([`HoldMemory`]) and each object
    ///    pinned in turn: `heap_size` (user code), and, for the objects with
    ///    an edge through a map key, a labelled trace that formats the keys
    ///    (user code, which may drop handles).
    pub(crate) fn capture_from(heap: &Heap) -> HeapGraph {
        let mut headers: Vec<NonNull<Header>> = heap
            .all_objects()
            .into_iter()
            // SAFETY: enumerated objects are allocated.
            .filter(|h| unsafe { h.as_ref() }.strong.get() > 0)
            .collect();
        // Chunks are sorted runs: merging them is cheap.
        headers.sort();
        // Node numbers are `u32`s (in headers' scratch words, in the edges).
        assert!(
            headers.len() < u32::MAX as usize,
            "too many objects for a HeapGraph"
        );
        let mut objects = Columns::with_capacity(headers.len());
        let mut edges = Edges {
            start: Vec::with_capacity(headers.len() + 1),
            target: Vec::new(),
            label: EdgeLabels::default(),
            interner: Interner::default(),
            keyed: Vec::new(),
        };
        match Quiesced::start(heap) {
            Some(quiesced) => {
                // Header invariants this relies on (see `Header`): with the
                // heap quiesced no object is `BUFFERED` and none carries
                // `VISITED` (only a collection sets it, and none runs), so
                // every scratch word is free; only nodes get `VISITED` here,
                // and `Numbered` (declared after `quiesced`, so dropped
                // first) clears it before the buffer is restored.
                let numbered = Numbered(&headers);
                for (i, h) in headers.iter().enumerate() {
                    // SAFETY: live (enumerated with strong > 0, nothing freed
                    // since).
                    let h = unsafe { h.as_ref() };
                    h.scratch.set(i as u32);
                    h.set(VISITED);
                }
                let resolve = |target: NonNull<Header>| {
                    // SAFETY: the target of an edge is an object a traced,
                    // intact value holds a `Gc` to: its header is readable.
                    let t = unsafe { target.as_ref() };
                    t.has(VISITED).then(|| t.scratch.get())
                };
                first_pass(heap, &headers, &mut objects, &mut edges, resolve);
                drop(numbered);
                drop(quiesced);
            }
            None => {
                let mut index = AddrMap::default();
                index.reserve(headers.len());
                for (i, h) in headers.iter().enumerate() {
                    index.insert(h.as_ptr() as usize, i as u32);
                }
                let resolve = |t: NonNull<Header>| index.get(&(t.as_ptr() as usize)).copied();
                first_pass(heap, &headers, &mut objects, &mut edges, resolve);
            }
        }
        edges.start.push(edges.target.len() as u32);
        second_pass(heap, &headers, &mut objects, &mut edges);
        drop(headers);
        let stamp = crate::report::ids::HeapStamp::of(heap);
        objects.count_outside(&edges.target);
        // (The edge arrays grew by doubling.)
        edges.target.shrink_to_fit();
        edges.label.code.shrink_to_fit();
        edges.label.wide.shrink_to_fit();
        HeapGraph {
            nodes: objects,
            out_start: edges.start,
            out_target: edges.target,
            out_label: edges.label,
            in_edges: OnceLock::new(),
            objects: OnceLock::new(),
            labels: edges.interner.labels,
            stamp,
        }
    }
}

/// The first pass of [`HeapGraph::capture_from`]: counts, flags and edges of
/// every node (runs no user code but `Trace::trace`).
pub(super) fn first_pass(
    heap: &Heap,
    headers: &[NonNull<Header>],
    objects: &mut Columns,
    edges: &mut Edges,
    resolve: impl FnMut(NonNull<Header>) -> Option<u32>,
) {
    let mut path = LabelPath::template();
    let mut sink = CaptureSink {
        resolve,
        edges,
        keyed: false,
    };
    for (n, &header) in headers.iter().enumerate() {
        sink.edges.start.push(sink.edges.target.len() as u32);
        // SAFETY: live (enumerated with strong > 0; only `Trace` code, which
        // drops no handle, ran since).
        let h = unsafe { header.as_ref() };
        let entry = heap.type_of(h);
        let strong = h.strong.get();
        // Minus the implicit weak while the value is there.
        let weak = h.weak.get().saturating_sub(u32::from(strong > 0));
        let dead = !h.value_alive();
        // A value lent out by a `GcMut` may not be read: its edges are
        // unknown, like those of a mutably borrowed `RefCell`.
        let mut untraceable = !dead && !h.value_readable();
        if h.value_readable() && !h.has(ACYCLIC) {
            path.clear();
            sink.keyed = false;
            let mut tracer = Tracer::new(&mut sink, Some(&mut path));
            // SAFETY: the value is intact and not lent out, and stays so:
            // no user code runs during this pass but `Trace::trace`, which
            // mutates nothing and drops no handle.
            unsafe { (entry.info.trace)(header, &mut tracer) };
            untraceable = !tracer.is_complete();
            if sink.keyed {
                sink.edges.keyed.push(n as u32);
            }
        }
        objects.push(
            header.as_ptr() as usize,
            &entry,
            h.type_index(),
            entry.info.alloc_size,
        );
        objects.set_counts(n, strong, weak);
        objects.set_flag(n, DEAD, dead);
        objects.set_flag(n, UNTRACEABLE_NODE, untraceable);
    }
}

/// The second pass of [`HeapGraph::capture_from`]: `heap_size`, and the
/// labels of edges through map keys (user code, which may drop handles).
pub(super) fn second_pass(
    heap: &Heap,
    headers: &[NonNull<Header>],
    objects: &mut Columns,
    edges: &mut Edges,
) {
    // A weak count on every object keeps each header readable to the end,
    // and a strong one on the object being measured or traced keeps its
    // value from being dropped under us.
    let _hold = HoldMemory::new(heap, headers);
    let mut keyed = edges.keyed.iter().copied().peekable();
    let mut path = LabelPath::new(false);
    // Nodes whose value went (user code dropped their last handle) before
    // their turn: their first-pass edges are gone with it.
    let mut died = false;
    for (n, &header) in headers.iter().enumerate() {
        // SAFETY: `_hold` keeps the header readable.
        let h = unsafe { header.as_ref() };
        let entry = heap.type_of(h);
        let is_keyed = keyed.next_if_eq(&(n as u32)).is_some();
        // The counts as at the node's turn (as the first pass read them,
        // unless user code changed them since).
        let strong = h.strong.get();
        // Minus our hold, and the implicit weak while the value is there.
        let weak = h.weak.get().saturating_sub(1 + u32::from(strong > 0));
        objects.set_counts(n, strong, weak);
        // SAFETY: readable (see above).
        let Some(pin) = (unsafe { ErasedGc::new(heap, header) }) else {
            let dead = objects.has(n, DEAD);
            if !h.value_alive() && !dead {
                objects.set_flag(n, DEAD, true);
                objects.set_flag(n, UNTRACEABLE_NODE, false);
                died |= edges.start[n] != edges.start[n + 1];
            } else if !dead {
                // Lent out by a `GcMut` since the first pass.
                objects.set_flag(n, UNTRACEABLE_NODE, true);
            }
            continue;
        };
        // SAFETY: the value is intact and pinned.
        let heap_size = unsafe { (entry.info.heap_size)(header) };
        objects.set_size(n, objects.size(n).saturating_add(heap_size));
        if is_keyed && !h.has(ACYCLIC) {
            let range = edges.start[n] as usize..edges.start[n + 1] as usize;
            let mut sink = KeySink {
                addrs: &objects.addr,
                targets: &edges.target[range.clone()],
                first: range.start,
                labels: &mut edges.label,
                interner: &mut edges.interner,
                k: 0,
            };
            path.clear();
            let mut tracer = Tracer::new(&mut sink, Some(&mut path));
            // SAFETY: as above.
            unsafe { (entry.info.trace)(header, &mut tracer) };
        }
        drop(pin);
    }
    if died {
        drop_edges_of_dead(objects, edges);
    }
}

/// Takes the edges of dead nodes out of `edges` (rare: user code in the
/// second pass dropped a value). An edge keeps its position among its
/// source's edges, which its label's code may depend on.
pub(super) fn drop_edges_of_dead(objects: &Columns, edges: &mut Edges) {
    let mut w = 0;
    let mut from = edges.start[0] as usize;
    for n in 0..objects.len() {
        let end = edges.start[n + 1] as usize;
        edges.start[n] = w as u32;
        if !objects.has(n, DEAD) {
            for e in from..end {
                edges.target[w] = edges.target[e];
                edges.label.code[w] = edges.label.code[e];
                w += 1;
            }
        }
        from = end;
    }
    edges.start[objects.len()] = w as u32;
    edges.target.truncate(w);
    edges.label.code.truncate(w);
}
