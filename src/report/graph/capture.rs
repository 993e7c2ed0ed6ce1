//! The capture of a [`HeapGraph`]: every object and edge of the heap, in
//! two passes (see [`HeapGraph::capture_from`]).

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::OnceLock;

use crate::addr_map::AddrMap;
use crate::collect::Quiesced;
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

    fn edge_run(&mut self, first: usize, targets: &[NonNull<Header>], path: &mut LabelPath) {
        let (l, i) = self.edges.interner.label_of(path);
        // One label for the run when its text's one `[#]` is the run's
        // index (not with a key, or another index, in the path).
        let last = first + targets.len();
        if i as usize != first || last >= WHOLE as usize || path.has_key() {
            for (k, &target) in targets.iter().enumerate() {
                path.set_last_index(first + k);
                self.edge_path(target, path);
            }
            path.set_last_index(first);
            return;
        }
        for (k, &target) in targets.iter().enumerate() {
            if let Some(t) = (self.resolve)(target) {
                self.edges.push(t, l, (first + k) as u32);
            }
        }
    }
}

/// Relabels one node's edges in the second, labelled pass (keys formatted
/// with their `Debug`): the `k`-th edge to a node must be the first pass's
/// `k`-th, else (user code changed the value meanwhile) the rest keep their
/// first-pass labels.
pub(super) struct KeySink<'a> {
    pub(super) addrs: &'a [NonNull<Header>],
    /// The node's edges: their targets, and the position of the first.
    pub(super) targets: &'a [u32],
    pub(super) first: usize,
    pub(super) labels: &'a mut EdgeLabels,
    pub(super) interner: &'a mut Interner,
    pub(super) k: usize,
}

impl EdgeSink for KeySink<'_> {
    fn edge(&mut self, target: NonNull<Header>, path: &str) {
        let Some(t) = self.addrs.binary_search(&target).ok() else {
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
pub(super) struct Numbered<'a>(pub(super) &'a [NonNull<Header>]);

impl Drop for Numbered<'_> {
    fn drop(&mut self) {
        for &a in self.0 {
            // SAFETY: nodes are live (strong > 0 when listed, and only
            // `Trace` code, which drops no handle, ran since).
            unsafe { a.as_ref() }.clear(VISITED);
        }
    }
}

/// The heap's objects with `strong > 0`, in address order, read from the
/// chunks' slots in place (no list of every object, no sort). With
/// `number`, each one also gets `VISITED` and its node number in its
/// `scratch` word.
///
/// # Safety
/// With `number`, the heap is [`Quiesced`] (every scratch word is free and
/// no object carries `VISITED`), and the caller clears `VISITED` on every
/// listed node ([`Numbered`]) before the quiesced state ends.
pub(super) unsafe fn list_objects(heap: &Heap, number: bool) -> Vec<NonNull<Header>> {
    let (mut spans, mut large) = heap.object_spans();
    // Chunks do not overlap: sorted by base, their slots are in address
    // order; so are the large objects, merged in between.
    spans.sort_unstable_by_key(|s| s.base);
    large.sort_unstable();
    let mut addr = Vec::with_capacity(heap.live_objects());
    #[inline(always)]
    fn one(addr: &mut Vec<NonNull<Header>>, header: NonNull<Header>, number: bool) {
        // SAFETY: a chunk slot (readable, see `ChunkSpan`; no user code
        // runs here) or a large object of the heap.
        let h = unsafe { header.as_ref() };
        if h.state.get() == 0 || h.strong.get() == 0 {
            return; // a free slot, or an object being dropped right now
        }
        if number {
            // (Node numbers fit: checked below, before any is used.)
            h.scratch.set(addr.len() as u32);
            h.set(VISITED);
        }
        addr.push(header);
    }
    let mut large = large.into_iter().peekable();
    for span in spans {
        while let Some(l) = large.next_if(|l| l.cast::<u8>() < span.base) {
            one(&mut addr, l, number);
        }
        for header in span.slots() {
            one(&mut addr, header, number);
        }
    }
    for l in large {
        one(&mut addr, l, number);
    }
    addr
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
    ///    `VISITED` and its number in its `scratch` word as it is listed;
    ///    an edge to an object without `VISITED` (one being dropped) is
    ///    left out. No hash lookup per edge. `VISITED` is cleared on every
    ///    node and the buffer restored before the pass returns (on a panic
    ///    too). Inside a collection or a dry run (user code there asking for
    ///    a report), whose objects may carry `VISITED`, the pass looks
    ///    targets up in a hash map of addresses instead, touching no header.
    ///    Values whose type's `heap_size` is inert
    ///    ([`TypeEntry::heap_size_inert`]: it runs no user code) are
    ///    measured here, unpinned, like the rest of this pass.
    /// 2. Only if some node needs user code (a `heap_size` that is not
    ///    inert, or an edge through a map key): with every node's memory
    ///    held (a weak count each, see [`Holds`]) and each object pinned in
    ///    turn, `heap_size` (user code) of the others, and, for the objects
    ///    with an edge through a map key, a labelled trace that formats the
    ///    keys (user code, which may drop handles); every node's counts and
    ///    state are read again at its turn.
    ///
    /// [`TypeEntry::heap_size_inert`]: crate::header::TypeEntry
    pub(crate) fn capture_from(heap: &Heap) -> HeapGraph {
        let mut objects;
        let mut edges = Edges {
            start: Vec::new(),
            target: Vec::new(),
            label: EdgeLabels::default(),
            interner: Interner::default(),
            keyed: Vec::new(),
        };
        // Declared before `quiesced`: on a panic, the weak counts are given
        // back once the heap is out of its quiesced state and no node
        // carries `VISITED`.
        let mut holds = Holds {
            heap,
            addr: Vec::new(),
            held: Cell::new(0),
            released: Cell::new(0),
        };
        let measured;
        match Quiesced::start(heap) {
            Some(quiesced) => {
                // Header invariants this relies on (see `Header`): with the
                // heap quiesced no object is `BUFFERED` and none carries
                // `VISITED` (only a collection sets it, and none runs), so
                // every scratch word is free; only nodes get `VISITED` here,
                // and `Numbered` (declared after `quiesced`, so dropped
                // first) clears it before the buffer is restored.
                // SAFETY: quiesced, and `numbered` clears `VISITED` (nothing
                // between the listing and it can panic but an allocation
                // failure, which aborts).
                holds.addr = unsafe { list_objects(heap, true) };
                let numbered = Numbered(&holds.addr);
                check_len(holds.addr.len());
                objects = Columns::with_capacity(holds.addr.len());
                edges.start.reserve_exact(holds.addr.len() + 1);
                let resolve = |target: NonNull<Header>| {
                    // SAFETY: the target of an edge is an object a traced,
                    // intact value holds a `Gc` to: its header is readable.
                    let t = unsafe { target.as_ref() };
                    t.has(VISITED).then(|| t.scratch.get())
                };
                measured = first_pass(heap, &holds, &mut objects, &mut edges, resolve);
                drop(numbered);
                drop(quiesced);
            }
            None => {
                // SAFETY: no numbering.
                holds.addr = unsafe { list_objects(heap, false) };
                check_len(holds.addr.len());
                objects = Columns::with_capacity(holds.addr.len());
                edges.start.reserve_exact(holds.addr.len() + 1);
                let mut index = AddrMap::default();
                index.reserve(holds.addr.len());
                for (i, &a) in holds.addr.iter().enumerate() {
                    index.insert(a.as_ptr() as usize, i as u32);
                }
                let resolve = |t: NonNull<Header>| index.get(&(t.as_ptr() as usize)).copied();
                measured = first_pass(heap, &holds, &mut objects, &mut edges, resolve);
            }
        }
        edges.start.push(edges.target.len() as u32);
        if !measured || !edges.keyed.is_empty() {
            second_pass(heap, &holds, &mut objects, &mut edges);
        }
        holds.release_to(holds.addr.len());
        // (In place: a pointer and a `usize` have one layout.)
        objects.addr = std::mem::take(&mut holds.addr)
            .into_iter()
            .map(|h| h.as_ptr() as usize)
            .collect();
        drop(holds);
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

/// Node numbers are `u32`s (in headers' scratch words, in the edges).
pub(super) fn check_len(len: usize) {
    assert!(len < u32::MAX as usize, "too many objects for a HeapGraph");
}

/// The node list (`addr`, ascending), and a weak count on nodes
/// `released..held`, which keeps their headers readable (their memory
/// allocated) whatever user code frees; given back when this drops.
///
/// The first pass takes the counts as it goes once it meets the first node
/// that the second pass must measure (and those before it then), so that
/// no extra walk over the headers is made; the second pass gives each back
/// after the node's turn when no labelled trace is left to run (a labelled
/// trace matches its targets' addresses against the list: none of them may
/// be reused meanwhile), else at the end.
pub(super) struct Holds<'a> {
    heap: &'a Heap,
    pub(super) addr: Vec<NonNull<Header>>,
    held: Cell<usize>,
    released: Cell<usize>,
}

impl Holds<'_> {
    /// Takes a weak count on nodes `held..end`.
    ///
    /// Nodes `held..end` are live (strong > 0 when listed, and only `Trace`
    /// code, which drops no handle, ran since): callers call this only
    /// before any user code but `Trace::trace` ran.
    #[inline]
    fn take_to(&self, end: usize) {
        let from = self.held.get();
        if from >= end {
            return;
        }
        for &a in &self.addr[from..end] {
            // SAFETY: a live node (above).
            unsafe { a.as_ref() }.inc_weak();
        }
        self.held.set(end);
    }

    /// Gives back the weak counts on nodes `released..end` (`end` at most
    /// `held`).
    #[inline]
    fn release_to(&self, end: usize) {
        let (from, end) = (self.released.get(), end.min(self.held.get()));
        if from >= end {
            return;
        }
        for &a in &self.addr[from..end] {
            // SAFETY: we own the weak count taken in `take_to`, which keeps
            // the header readable; no node carries `VISITED` (cleared after
            // the first pass) or `COLLECTING`. A node is not read once its
            // count is given back.
            unsafe { self.heap.release_weak(a) };
        }
        self.released.set(end);
    }
}

impl Drop for Holds<'_> {
    fn drop(&mut self) {
        self.release_to(self.held.get());
    }
}

/// The first pass of [`HeapGraph::capture_from`]: counts, flags and edges of
/// every node, and the sizes of those whose `heap_size` is inert (runs no
/// user code but `Trace::trace`). Returns whether every node is measured
/// (no `heap_size` left for the second pass); if not, every node is held
/// ([`Holds`]).
pub(super) fn first_pass(
    heap: &Heap,
    holds: &Holds<'_>,
    objects: &mut Columns,
    edges: &mut Edges,
    resolve: impl FnMut(NonNull<Header>) -> Option<u32>,
) -> bool {
    let mut path = LabelPath::template();
    let mut sink = CaptureSink {
        resolve,
        edges,
        keyed: false,
    };
    let mut measured = true;
    for (n, &header) in holds.addr.iter().enumerate() {
        sink.edges.start.push(sink.edges.target.len() as u32);
        // SAFETY: a listed node: live (strong > 0 when listed; only `Trace`
        // code, which drops no handle, ran since).
        let h = unsafe { header.as_ref() };
        let index = h.type_index();
        let entry = heap.type_entry(index);
        let strong = h.strong.get();
        // Minus the implicit weak while the value is there.
        let weak = h.weak.get().saturating_sub(u32::from(strong > 0));
        let dead = !h.value_alive();
        let readable = h.value_readable();
        // A value lent out by a `GcMut` may not be read: its edges are
        // unknown, like those of a mutably borrowed `RefCell`.
        let mut untraceable = !dead && !readable;
        let mut size = entry.info.alloc_size;
        if readable && !h.has(ACYCLIC) {
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
        if readable {
            if entry.heap_size_inert {
                // SAFETY: the value is intact and not lent out; its
                // `heap_size` runs no user code (the type's `Trace`
                // contract), so nothing can drop it meanwhile: no pin.
                size = size.saturating_add(unsafe { (entry.info.heap_size)(header) });
            } else if let Some(owned) = {
                // SAFETY: as above; `__inert_heap_size` runs no user code
                // (the trait's contract), or answers `None` before any.
                unsafe { (entry.info.inert_heap_size)(header) }
            } {
                size = size.saturating_add(owned);
            } else {
                measured = false;
            }
        }
        if !measured {
            // The second pass will run: hold this node (and, the first
            // time, those before it). No user code but `Trace::trace` ran.
            holds.take_to(n + 1);
        }
        let flags = if dead { DEAD } else { 0 } | if untraceable { UNTRACEABLE_NODE } else { 0 };
        objects.push(&entry, index | flags, size, strong, weak);
    }
    measured
}

/// The second pass of [`HeapGraph::capture_from`]: `heap_size`, and the
/// labels of edges through map keys (user code, which may drop handles).
pub(super) fn second_pass(
    heap: &Heap,
    holds: &Holds<'_>,
    objects: &mut Columns,
    edges: &mut Edges,
) {
    // A weak count on every node keeps each header readable until its turn
    // is over (taken here if the first pass did not: only keyed edges to
    // relabel; no user code has run since the listing), and a strong one on
    // the object being measured or traced keeps its value from being
    // dropped under us.
    let addr = &holds.addr[..];
    holds.take_to(addr.len());
    let mut keyed = edges.keyed.iter().copied().peekable();
    let mut path = LabelPath::new(false);
    // Nodes whose value went (user code dropped their last handle) before
    // their turn: their first-pass edges are gone with it.
    let mut died = false;
    for (n, &header) in addr.iter().enumerate() {
        if keyed.peek().is_none() {
            // No labelled trace left: the nodes before this one are done.
            holds.release_to(n);
        }
        // SAFETY: `holds` keeps the header readable.
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
        objects.set_size(n, entry.info.alloc_size.saturating_add(heap_size));
        if is_keyed && !h.has(ACYCLIC) {
            let range = edges.start[n] as usize..edges.start[n + 1] as usize;
            let mut sink = KeySink {
                addrs: addr,
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
