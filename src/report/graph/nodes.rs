//! The nodes of a graph being built: which objects, how an edge's target
//! becomes a node number, and the weak counts that keep the nodes' headers
//! readable while user code runs. Shared by the builder
//! ([`build`](super::capture::build): the [`HeapGraph`](super::HeapGraph)
//! and the garbage analysis) and the unlabelled
//! [`PlainGraph`](super::PlainGraph).

use std::cell::Cell;
use std::ptr::NonNull;

use crate::addr_map::AddrMap;
use crate::collect::Quiesced;
use crate::header::{Header, VISITED};
use crate::heap::Heap;
use crate::report::big_vec::BigVec;

/// The nodes of a graph, numbered `0..addr.len()`, and a weak count on
/// nodes `released..held`, which keeps their headers readable (their memory
/// allocated) whatever user code frees.
///
/// The builder's first pass takes the counts as it goes once it meets the
/// first node that the second pass must measure (and those before it
/// then), so that no extra walk over the headers is made; the second pass
/// gives each back after the node's turn when no labelled trace is left to
/// run (a labelled trace matches its targets' addresses against the nodes:
/// none of them may be reused meanwhile), else at the end.
///
/// Dropped (on every path, a panic in user `Trace` code included): clears
/// `VISITED` on every node if they were numbered through their headers,
/// ends the quiesced state, then gives the weak counts back, in that order.
pub(super) struct Nodes<'h> {
    heap: &'h Heap,
    /// The nodes' headers.
    pub(super) addr: BigVec<NonNull<Header>>,
    /// `Some` while the nodes are numbered through their headers: each one
    /// carries `VISITED` and its number in its `scratch` word.
    quiesced: Option<Quiesced<'h>>,
    /// The node of each address, when they are not numbered through their
    /// headers.
    index: AddrMap<u32>,
    held: Cell<usize>,
    released: Cell<usize>,
}

/// A walk over the nodes that turns edge targets into node numbers
/// ([`Nodes::walk`]); `resolve` gives `None` for an object that is not a
/// node.
pub(super) trait Walk {
    type Out;
    fn run(
        self,
        nodes: &Nodes<'_>,
        resolve: impl FnMut(NonNull<Header>) -> Option<u32>,
    ) -> Self::Out;
}

impl<'h> Nodes<'h> {
    /// Every object of `heap` with `strong > 0`, in address order. While
    /// the heap can be [`Quiesced`] (no collection runs, the candidate
    /// buffer is set aside, so no object is `BUFFERED` and none carries
    /// `VISITED`: every scratch word is free), each node gets `VISITED` and
    /// its number in its `scratch` word as it is listed: no hash lookup per
    /// edge, and an edge to an object without `VISITED` (one being dropped)
    /// is no edge. Inside a collection or a dry run (user code there asking
    /// for a report), whose objects may carry `VISITED`, the nodes are
    /// numbered through a hash map of addresses instead, touching no header.
    pub(super) fn whole_heap(heap: &'h Heap) -> Nodes<'h> {
        match Quiesced::start(heap) {
            Some(quiesced) => {
                // SAFETY: quiesced; the `Nodes` made at once clears `VISITED`
                // when its numbering ends (nothing between the listing and
                // it can panic but an allocation failure, which aborts).
                let addr = unsafe { list_objects(heap, true) };
                let nodes = Nodes::new(heap, addr, Some(quiesced), AddrMap::default());
                check_len(nodes.addr.len());
                nodes
            }
            None => {
                // SAFETY: no numbering.
                let addr = unsafe { list_objects(heap, false) };
                Self::by_address(heap, addr)
            }
        }
    }

    /// `members`, numbered in their order through a hash map of addresses:
    /// the garbage a dry run hands over, whose headers may carry the
    /// collector's flags and whose scratch words are in use (buffer
    /// indices), so nothing is written to a header but counts.
    ///
    /// The caller keeps every member's header readable meanwhile (the
    /// collector holds their memory).
    pub(super) fn members(heap: &'h Heap, members: &[NonNull<Header>]) -> Nodes<'h> {
        Self::by_address(heap, BigVec::from_slice(members))
    }

    fn by_address(heap: &'h Heap, addr: BigVec<NonNull<Header>>) -> Nodes<'h> {
        check_len(addr.len());
        let mut index = AddrMap::default();
        index.reserve(addr.len());
        for (i, &a) in addr.iter().enumerate() {
            index.insert(a.as_ptr() as usize, i as u32);
        }
        Nodes::new(heap, addr, None, index)
    }

    fn new(
        heap: &'h Heap,
        addr: BigVec<NonNull<Header>>,
        quiesced: Option<Quiesced<'h>>,
        index: AddrMap<u32>,
    ) -> Nodes<'h> {
        Nodes {
            heap,
            addr,
            quiesced,
            index,
            held: Cell::new(0),
            released: Cell::new(0),
        }
    }

    pub(super) fn heap(&self) -> &'h Heap {
        self.heap
    }

    pub(super) fn len(&self) -> usize {
        self.addr.len()
    }

    /// Runs `walk` with the resolver of this numbering (monomorphized for
    /// each: no test per edge). Only before [`end_numbering`](Self::end_numbering).
    pub(super) fn walk<W: Walk>(&self, walk: W) -> W::Out {
        if self.quiesced.is_some() {
            walk.run(self, |target: NonNull<Header>| {
                // SAFETY: the target of an edge is an object a traced,
                // intact value holds a `Gc` to: its header is readable.
                let t = unsafe { target.as_ref() };
                t.has(VISITED).then(|| t.scratch())
            })
        } else {
            walk.run(self, |t: NonNull<Header>| {
                self.index.get(&(t.as_ptr() as usize)).copied()
            })
        }
    }

    /// The node of the object at `target`, if it is one, without the
    /// headers' numbering (usable after [`end_numbering`](Self::end_numbering)).
    pub(super) fn find(&self, target: NonNull<Header>) -> Option<u32> {
        if self.index.is_empty() {
            // Numbered through the headers: the whole heap, in address order.
            self.addr.binary_search(&target).ok().map(|n| n as u32)
        } else {
            self.index.get(&(target.as_ptr() as usize)).copied()
        }
    }

    /// Clears `VISITED` on every node if they were numbered through their
    /// headers, and ends the quiesced state (before any user code but
    /// `Trace::trace` runs: it may collect).
    pub(super) fn end_numbering(&mut self) {
        if self.quiesced.is_some() {
            for &a in &self.addr {
                // SAFETY: nodes are live (strong > 0 when listed, and only
                // `Trace` code, which drops no handle, ran since).
                unsafe { a.as_ref() }.clear(VISITED);
            }
            // Restores the candidate buffer, then unmarks the heap.
            self.quiesced = None;
        }
    }

    /// Ends the numbering, gives every weak count back, and hands the list
    /// of nodes over.
    pub(super) fn into_addr(mut self) -> BigVec<NonNull<Header>> {
        self.end_numbering();
        self.release_to(self.held.get());
        std::mem::take(&mut self.addr)
    }

    /// Takes a weak count on nodes `held..end`.
    ///
    /// Nodes `held..end` are live (strong > 0 when listed, and only `Trace`
    /// code, which drops no handle, ran since) or held by the caller of
    /// [`members`](Self::members): callers call this only before any user
    /// code but `Trace::trace` ran.
    #[inline]
    pub(super) fn take_to(&self, end: usize) {
        let from = self.held.get();
        if from >= end {
            return;
        }
        for &a in &self.addr[from..end] {
            // SAFETY: a live or held node (above).
            unsafe { a.as_ref() }.inc_weak();
        }
        self.held.set(end);
    }

    /// Gives back the weak counts on nodes `released..end` (`end` at most
    /// `held`).
    #[inline]
    pub(super) fn release_to(&self, end: usize) {
        let (from, end) = (self.released.get(), end.min(self.held.get()));
        if from >= end {
            return;
        }
        for &a in &self.addr[from..end] {
            // SAFETY: we own the weak count taken in `take_to`, which keeps
            // the header readable; no node carries `VISITED` (cleared when
            // the numbering ended, before any count is given back) or
            // `COLLECTING`. A node is not read once its count is given back.
            unsafe { self.heap.release_weak(a) };
        }
        self.released.set(end);
    }
}

impl Drop for Nodes<'_> {
    fn drop(&mut self) {
        self.end_numbering();
        self.release_to(self.held.get());
    }
}

/// Node numbers are `u32`s (in headers' scratch words, in the edges).
fn check_len(len: usize) {
    assert!(len < u32::MAX as usize, "too many objects for a HeapGraph");
}

/// The heap's objects with `strong > 0`, in address order, read from the
/// chunks' slots in place (no list of every object, no sort). With
/// `number`, each one also gets `VISITED` and its node number in its
/// `scratch` word.
///
/// # Safety
/// With `number`, the heap is [`Quiesced`] (every scratch word is free and
/// no object carries `VISITED`), and the caller clears `VISITED` on every
/// listed node before the quiesced state ends.
unsafe fn list_objects(heap: &Heap, number: bool) -> BigVec<NonNull<Header>> {
    let mut addr = BigVec::with_capacity(heap.live_objects());
    let one = |header: NonNull<Header>| {
        // SAFETY: an allocated object (readable; no user code runs here).
        let h = unsafe { header.as_ref() };
        if h.strong() == 0 {
            return; // an object being dropped right now
        }
        if number {
            // (Node numbers fit: checked once listed, before any is used.)
            h.set_scratch(addr.len() as u32);
            h.set(VISITED);
        }
        addr.push(header);
    };
    // SAFETY: `one` allocates and frees nothing.
    unsafe { heap.for_each_object_by_address(one) };
    addr
}
