//! The builder: the objects of a set of [`Nodes`] with their counts, sizes
//! and edges, each edge with its label, in two passes (see [`build`]). The
//! capture of a [`HeapGraph`] is the builder over the whole heap.

use std::ptr::NonNull;
use std::sync::OnceLock;

use crate::gc::ErasedGc;
use crate::header::{Header, ACYCLIC};
use crate::heap::Heap;
use crate::report::big_vec::BigVec;
use crate::trace::{EdgeSink, LabelPath, Tracer};

use super::columns::{Columns, DEAD, TYPE_MASK, UNTRACEABLE_NODE};
use super::labels::{EdgeLabels, Interner};
use super::nodes::{Nodes, Walk};
use super::{HeapGraph, WHOLE};

/// The first pass's edges and labels.
pub(super) struct Edges {
    pub(super) start: BigVec<u32>,
    pub(super) target: BigVec<u32>,
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
        // (Folded labels keep keys as `[_]`: nothing to relabel.)
        self.keyed |= path.has_key() && !self.edges.interner.folds();
        let (l, i) = self.edges.interner.label_of(path);
        self.edges.push(t, l, i);
    }

    fn edge_run(&mut self, first: usize, targets: &[NonNull<Header>], path: &mut LabelPath) {
        let (l, i) = self.edges.interner.label_of(path);
        self.keyed |= path.has_key();
        // One label for the whole run: folded (every index is `[_]`), or a
        // template whose one `[#]` is the run's index (no key, no other
        // index in the path), each edge with its own index.
        let folded = self.edges.interner.folds();
        let counted = i as usize == first && first + targets.len() < WHOLE as usize;
        if !(folded || counted && !path.has_key()) {
            for (k, &target) in targets.iter().enumerate() {
                path.set_last_index(first + k);
                self.edge_path(target, path);
            }
            path.set_last_index(first);
            return;
        }
        for (k, &target) in targets.iter().enumerate() {
            if let Some(t) = (self.resolve)(target) {
                let index = if folded { i } else { (first + k) as u32 };
                self.edges.push(t, l, index);
            }
        }
    }
}

/// Relabels one node's edges in the second, labelled pass (keys formatted
/// with their `Debug`): the `k`-th edge to a node must be the first pass's
/// `k`-th, else (user code changed the value meanwhile) the rest keep their
/// first-pass labels.
struct KeySink<'a> {
    nodes: &'a Nodes<'a>,
    /// The node's edges: their targets, and the position of the first.
    pub(super) targets: &'a [u32],
    pub(super) first: usize,
    pub(super) labels: &'a mut EdgeLabels,
    pub(super) interner: &'a mut Interner,
    pub(super) k: usize,
}

impl EdgeSink for KeySink<'_> {
    fn edge(&mut self, target: NonNull<Header>, path: &str) {
        let Some(t) = self.nodes.find(target) else {
            return;
        };
        if self.targets.get(self.k) != Some(&t) {
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

/// How the builder labels edges.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum LabelMode {
    /// Each edge its own label (`.kids[3]`, `.by_id["k"]`): a template and
    /// an index, keys formatted in a second, labelled trace. The
    /// [`HeapGraph`]'s.
    Template,
    /// Every index and key written `[_]` (`.kids[_]`), no key formatted:
    /// the garbage analysis's edge kinds.
    Folded,
}

/// What the builder makes: the nodes (their columns, `addr` filled) and
/// the edges in compressed-row form, each with its label.
pub(crate) struct Built {
    pub(super) objects: Columns,
    pub(super) edges: Edges,
}

impl Built {
    /// The graph of a dry run's garbage: `members`, numbered in their
    /// order, with folded labels ([`LabelMode::Folded`]). The caller keeps
    /// every member's memory held (the collector does, during a dry run's
    /// inspection); `heap_size` runs as [`build`] says.
    pub(crate) fn garbage(heap: &Heap, members: &[NonNull<Header>]) -> Built {
        build(Nodes::members(heap, members), LabelMode::Folded)
    }

    /// The number of nodes.
    pub(crate) fn len(&self) -> usize {
        self.objects.len()
    }

    /// The heap's type index of node `n`'s value.
    pub(crate) fn type_index(&self, n: usize) -> u32 {
        self.objects.kind[n] & TYPE_MASK
    }

    /// The bytes node `n` takes (as [`HeapGraph::size`]).
    pub(crate) fn size(&self, n: usize) -> usize {
        self.objects.size(n)
    }

    /// The edges, taken out: `(start, target)`, the edges of node `n` being
    /// `start[n]..start[n + 1]` (their labels stay).
    pub(crate) fn take_edges(&mut self) -> (BigVec<u32>, BigVec<u32>) {
        let start = std::mem::take(&mut self.edges.start);
        (start, std::mem::take(&mut self.edges.target))
    }

    /// The label of edge `e`: a number, one per text
    /// ([`label_text`](Self::label_text)). (Folded labels are whole: no
    /// index to fill in.)
    pub(crate) fn label(&self, e: usize) -> u32 {
        self.edges.label.get(e, 0).0
    }

    /// The text of label `label`.
    pub(crate) fn label_text(&self, label: u32) -> &str {
        &self.edges.interner.labels.texts[label as usize]
    }
}

/// Builds the graph of `nodes`, in two passes.
///
/// 1. Every node, in order, with its counts and its edges, traced with a
///    *template* path ([`LabelPath::template`]): no key is formatted, so no
///    user code runs but `Trace::trace`, which by its unsafe contract
///    mutates nothing and drops no handle. Each edge's target becomes a
///    node number through the nodes' numbering ([`Nodes::walk`]); an edge
///    to an object that is not a node is left out. Values whose
///    `heap_size` runs no user code (`Trace::__inert_heap_size` answers)
///    are measured here, unpinned, like the rest of this pass.
///    The numbering ends with the pass.
/// 2. Only if some node needs user code (a `heap_size` that is not inert,
///    or, with [`LabelMode::Template`], an edge through a map key): with
///    every node's memory held (a weak count each, see [`Nodes::take_to`])
///    and each object pinned in turn, `heap_size` (user code) of the
///    others, and, for the objects with an edge through a map key, a
///    labelled trace that formats the keys (user code, which may drop
///    handles); every node's counts and state are read again at its turn,
///    and a node whose value went meanwhile loses its edges.
pub(super) fn build(mut nodes: Nodes<'_>, mode: LabelMode) -> Built {
    let heap = nodes.heap();
    let mut edges = Edges {
        start: BigVec::with_capacity(nodes.len() + 1),
        // (A tree has one edge less than nodes; more edges grow it.)
        target: BigVec::with_capacity(nodes.len()),
        label: EdgeLabels {
            code: BigVec::with_capacity(nodes.len()),
            wide: Vec::new(),
        },
        interner: Interner::new(mode == LabelMode::Folded),
        keyed: Vec::new(),
    };
    let mut objects = Columns::with_capacity(nodes.len());
    let measured = nodes.walk(FirstPass {
        heap,
        objects: &mut objects,
        edges: &mut edges,
    });
    nodes.end_numbering();
    edges.start.push(edges.target.len() as u32);
    if !measured || !edges.keyed.is_empty() {
        second_pass(heap, &nodes, &mut objects, &mut edges);
    }
    // (In place: a pointer and a `usize` have one layout.)
    objects.addr = nodes.into_addr().cast();
    Built { objects, edges }
}

impl HeapGraph {
    /// The capture: the builder over every object of the heap, in address
    /// order, with template labels ([`build`]).
    pub(crate) fn capture_from(heap: &Heap) -> HeapGraph {
        let Built {
            mut objects,
            mut edges,
        } = build(Nodes::whole_heap(heap), LabelMode::Template);
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

/// The first pass of [`build`]: counts, flags and edges of every node,
/// and the sizes of those whose `heap_size` is inert (runs no user code but
/// `Trace::trace`). Returns whether every node is measured (no `heap_size`
/// left for the second pass); if not, every node is held
/// ([`Nodes::take_to`]).
struct FirstPass<'a> {
    heap: &'a Heap,
    objects: &'a mut Columns,
    edges: &'a mut Edges,
}

impl Walk for FirstPass<'_> {
    type Out = bool;

    fn run(self, nodes: &Nodes<'_>, resolve: impl FnMut(NonNull<Header>) -> Option<u32>) -> bool {
        let FirstPass {
            heap,
            objects,
            edges,
        } = self;
        let mut path = LabelPath::template();
        let mut sink = CaptureSink {
            resolve,
            edges,
            keyed: false,
        };
        let mut measured = true;
        for (n, &header) in nodes.addr.iter().enumerate() {
            sink.edges.start.push(sink.edges.target.len() as u32);
            // SAFETY: a node: live (strong > 0 when listed; only `Trace` code,
            // which drops no handle, ran since), or a member whose memory the
            // caller of `Nodes::members` holds.
            let h = unsafe { header.as_ref() };
            let index = h.type_index();
            let entry = heap.type_entry(index);
            let strong = h.strong();
            // Minus the implicit weak while the value is there.
            let weak = h.weak().saturating_sub(u32::from(strong > 0));
            let dead = !h.value_alive();
            let readable = h.value_readable();
            // A value lent out by a `GcMut` may not be read: its edges are
            // unknown, like those of a mutably borrowed `RefCell`.
            let mut untraceable = !dead && !readable;
            // SAFETY: an allocated object of this type.
            let mut size = unsafe { entry.info.alloc_size_of(header) };
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
                if let Some(owned) = {
                    // SAFETY: the value is intact and not lent out;
                    // `__inert_heap_size` runs no user code (the trait's
                    // contract) or answers `None`, so nothing can drop the
                    // value meanwhile: no pin.
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
                nodes.take_to(n + 1);
            }
            let flags =
                if dead { DEAD } else { 0 } | if untraceable { UNTRACEABLE_NODE } else { 0 };
            objects.push(&entry, index | flags, size, strong, weak);
        }
        measured
    }
}

/// The second pass of [`build`]: `heap_size`, and the labels of edges
/// through map keys (user code, which may drop handles).
fn second_pass(heap: &Heap, nodes: &Nodes<'_>, objects: &mut Columns, edges: &mut Edges) {
    // A weak count on every node keeps each header readable until its turn
    // is over (taken here if the first pass did not: only keyed edges to
    // relabel; no user code has run since the listing), and a strong one on
    // the object being measured or traced keeps its value from being
    // dropped under us.
    let addr = &nodes.addr[..];
    nodes.take_to(addr.len());
    let mut keyed = edges.keyed.iter().copied().peekable();
    let mut path = LabelPath::new(false);
    // Nodes whose value went (user code dropped their last handle) before
    // their turn: their first-pass edges are gone with it.
    let mut died = false;
    for (n, &header) in addr.iter().enumerate() {
        if keyed.peek().is_none() {
            // No labelled trace left: the nodes before this one are done.
            nodes.release_to(n);
        }
        // SAFETY: `nodes` holds a weak count on it: its header is readable.
        let h = unsafe { header.as_ref() };
        let entry = heap.type_of(h);
        let is_keyed = keyed.next_if_eq(&(n as u32)).is_some();
        // The counts as at the node's turn (as the first pass read them,
        // unless user code changed them since).
        let strong = h.strong();
        // Minus our hold, and the implicit weak while the value is there.
        let weak = h.weak().saturating_sub(1 + u32::from(strong > 0));
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
        // SAFETY: an allocated object of this type (pinned).
        let own_size = unsafe { entry.info.alloc_size_of(header) };
        objects.set_size(n, own_size.saturating_add(heap_size));
        if is_keyed && !h.has(ACYCLIC) {
            let range = edges.start[n] as usize..edges.start[n + 1] as usize;
            let mut sink = KeySink {
                nodes,
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
fn drop_edges_of_dead(objects: &Columns, edges: &mut Edges) {
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
