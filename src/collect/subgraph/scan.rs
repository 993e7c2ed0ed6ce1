//! Phase 3 of the collector ([`mod@crate::collect`]), the scan: which nodes
//! of the [`Subgraph`] are alive. A node is alive when something outside
//! the subgraph holds it (a trial count left after marking, or a value that
//! could not be fully traced), or when an alive node reaches it; the rest
//! is garbage.
//!
//! Two walks find that set, and [`Subgraph::scan`] runs the cheaper one:
//! from the nodes held from outside (the classic scan of trial deletion),
//! or, when those are the majority, from the few *suspects* only (the nodes
//! whose trial count is zero), each traced a second time.

use std::marker::PhantomData;
use std::ptr::NonNull;

use super::super::branching::{Branching, CoinToss, Predictable};
use super::super::prefetch::{prefetching, Part};
use super::{trace_node, Scanned, Subgraph, SUBGRAPH_FLAGS};
use crate::header::{Header, ALIVE, UNTRACEABLE, VISITED};
use crate::heap::Heap;
use crate::trace::EdgeSink;

impl Subgraph {
    /// Sets `ALIVE` on every node held from outside (trial count above zero,
    /// or not fully traceable) and on every node reachable from one.
    ///
    /// A collection over live data only (every node held from outside, as
    /// when a program walks its live graph and every object becomes a
    /// candidate) does not even start: no trial count is zero, so
    /// the result is [`Scanned::AllAlive`] and nothing is read again. Nor does a collection
    /// whose every node has a zero trial count and was fully traced (a
    /// garbage cycle on its own, the common case of a collection that
    /// frees): nothing is held from outside, so nothing is alive, and the
    /// pass that would look for holders is skipped. Otherwise the cheaper
    /// of two walks runs (both find the same set, see
    /// [`scan_suspects`](Self::scan_suspects)): when few nodes have a zero
    /// trial count, only those are traced again; else the walk from the
    /// nodes held from outside.
    #[inline]
    pub fn scan(&mut self, heap: &Heap) {
        if self.zero_trial == 0 {
            self.scanned = Scanned::AllAlive;
            return;
        }
        if self.zero_trial == self.nodes.len() && !self.any_untraceable {
            return;
        }
        self.scan_walk(heap);
    }

    /// The walk of [`scan`](Self::scan), out of line: the two tests before
    /// it decide most collections of a few objects.
    #[inline(never)]
    fn scan_walk(&mut self, heap: &Heap) {
        // On a scattered graph the walks' tests are coin tosses: made
        // without branches (see `branching`).
        #[cfg(test)]
        super::super::branching::count_scan(self.scattered);
        match (self.few_suspects(heap), self.scattered) {
            (true, false) => self.scan_suspects::<Predictable>(heap),
            (true, true) => self.scan_suspects::<CoinToss>(heap),
            (false, false) => self.scan_from_held::<Predictable>(heap),
            (false, true) => self.scan_from_held::<CoinToss>(heap),
        }
    }

    /// Whether [`scan_suspects`](Self::scan_suspects) is the cheaper walk:
    /// it traces each zero-trial node once, where
    /// [`scan_from_held`](Self::scan_from_held) traces every node held from
    /// outside, and what they reach. (With nothing held from outside, the
    /// latter traces nothing at all.) Debug builds alternate between the two
    /// whatever the sizes, so that the tests run both on every kind of
    /// subgraph.
    fn few_suspects(&self, heap: &Heap) -> bool {
        let held = self.nodes.len() - self.zero_trial;
        // (A suspect's index must fit its scratch word.)
        if held == 0 || self.zero_trial >= u32::MAX as usize {
            return false;
        }
        if cfg!(debug_assertions) {
            heap.collections() % 2 == 1
        } else {
            self.zero_trial <= held
        }
    }

    /// The classic scan: walks from every node held from outside, setting
    /// `ALIVE` on what it reaches. Stops as soon as every node is known to
    /// be alive.
    fn scan_from_held<B: Branching>(&mut self, heap: &Heap) {
        let Subgraph { nodes, work, .. } = self;
        work.clear();
        B::reserve_for(work, nodes.len());
        let mut unreached = 0;
        for &header in nodes.iter() {
            // SAFETY: nodes are allocated (struct invariant).
            let h = unsafe { header.as_ref() };
            // (`|`, not `||`: both tests, no branch.)
            let held = (h.scratch() > 0) | h.has(UNTRACEABLE);
            B::set_if(h, ALIVE, held);
            // SAFETY: room for every node was reserved above (`reserve_for`).
            unsafe { B::push_if(work, header, held) };
            unreached += usize::from(!held);
        }
        propagate_alive::<B>(heap, work, unreached);
    }

    /// The scan for a subgraph that is mostly held from outside (a
    /// collection whose candidates lead into live data, with a few garbage
    /// objects among them): traces again only the *suspects*, the nodes
    /// whose trial count is zero, once each, instead of every live node.
    ///
    /// Why it finds the same set: every node held from outside is alive. A
    /// suspect `s` has as many handles as edges from the subgraph into it
    /// (its trial count is zero), so giving it back its strong count and
    /// subtracting the edges *from suspects* leaves the number of edges into
    /// `s` from nodes held from outside. A suspect with a count left is
    /// reached from a live node, so it is alive, and so is every suspect it
    /// reaches; a path from a live node to a suspect enters the suspects
    /// through exactly such a node. What no such path reaches is garbage.
    /// The edges between suspects are recorded while counting, so that
    /// reaching them needs no second trace.
    fn scan_suspects<B: Branching>(&mut self, heap: &Heap) {
        let Subgraph {
            nodes,
            work: suspects,
            suspect_edges: edges,
            scanned,
            ..
        } = self;
        suspects.clear();
        edges.clear();
        B::reserve_for(suspects, nodes.len());
        for header in prefetching(nodes, Part::Header) {
            // SAFETY: nodes are allocated (struct invariant).
            let h = unsafe { header.as_ref() };
            // (`&`, not `&&`: both tests, no branch.)
            let suspect = (h.scratch() == 0) & !h.has(UNTRACEABLE);
            // A node held from outside is alive, and done with: it leaves
            // the table's flags now, so that `take_garbage` needs to look at
            // the suspects only (one pass fewer over the live majority).
            B::clear_unless(h, SUBGRAPH_FLAGS, suspect);
            // A suspect's count starts again at its strong count. Without
            // branches a held node gets one too: its scratch word is free
            // once it is out of the table.
            if suspect || B::BRANCH_FREE {
                h.set_scratch(h.strong());
            }
            // SAFETY: room for every node was reserved above (`reserve_for`).
            unsafe { B::push_if(suspects, header, suspect) };
        }
        *scanned = Scanned::SuspectsOnly;
        // Suspects are the nodes with `VISITED` and without `ALIVE` from
        // here on.
        for suspect in prefetching(suspects, Part::NextLine) {
            edges.starts.push(edges.targets.len());
            trace_node(
                heap,
                suspect,
                &mut SuspectSink::<B> {
                    targets: &mut edges.targets,
                    branching: PhantomData,
                },
            );
        }
        edges.starts.push(edges.targets.len());
        // Every count is final: a suspect with one left is alive. From here
        // on a suspect's scratch word is its index, to find its edges.
        let mut unreached = suspects.len();
        // Each suspect goes on the stack at most once, when it is found
        // alive; one slot more lets `CoinToss::push_if` write past the last.
        B::reserve_for(&mut edges.stack, suspects.len() + 1);
        for (index, &suspect) in suspects.iter().enumerate() {
            // SAFETY: nodes are allocated (struct invariant).
            let h = unsafe { suspect.as_ref() };
            let alive = h.scratch() > 0;
            B::set_if(h, ALIVE, alive);
            unreached -= usize::from(alive);
            // SAFETY: room reserved above (`reserve_for`).
            unsafe { B::push_if(&mut edges.stack, index as u32, alive) };
            h.set_scratch(index as u32);
        }
        while unreached > 0 {
            let Some(index) = edges.stack.pop() else {
                break;
            };
            let (from, to) = (
                edges.starts[index as usize],
                edges.starts[index as usize + 1],
            );
            for &target in &edges.targets[from..to] {
                // SAFETY: recorded targets are nodes, allocated (invariant).
                let t = unsafe { target.as_ref() };
                let reached = !t.has(ALIVE);
                B::set_if(t, ALIVE, reached);
                unreached -= usize::from(reached);
                // SAFETY: room reserved above (the stack holds each suspect
                // at most once).
                unsafe { B::push_if(&mut edges.stack, t.scratch(), reached) };
            }
        }
    }
}

/// Traces the `ALIVE` nodes in `work` and sets `ALIVE` on every node they
/// reach, until no work is left or all `unreached` nodes are reached.
fn propagate_alive<B: Branching>(
    heap: &Heap,
    work: &mut Vec<NonNull<Header>>,
    mut unreached: usize,
) {
    while unreached > 0 {
        let Some(header) = work.pop() else { break };
        trace_node(
            heap,
            header,
            &mut ScanSink::<B> {
                work,
                unreached: &mut unreached,
                branching: PhantomData,
            },
        );
    }
}

/// The edges between suspects, recorded by [`Subgraph::scan_suspects`]:
/// suspect `i`'s targets are `targets[starts[i]..starts[i + 1]]`.
#[derive(Default)]
pub(super) struct SuspectEdges {
    pub(super) targets: Vec<NonNull<Header>>,
    pub(super) starts: Vec<usize>,
    /// Indices of suspects found alive whose targets are still to be seen.
    pub(super) stack: Vec<u32>,
}

impl SuspectEdges {
    pub(super) fn clear(&mut self) {
        self.targets.clear();
        self.starts.clear();
        self.stack.clear();
    }
}

/// Receives the edges of suspects (nodes not `ALIVE`) in
/// [`Subgraph::scan_suspects`]: each edge to another suspect subtracts one
/// from its count, and is recorded.
struct SuspectSink<'a, B> {
    targets: &'a mut Vec<NonNull<Header>>,
    branching: PhantomData<B>,
}

impl<B: Branching> EdgeSink for SuspectSink<'_, B> {
    #[inline]
    fn edge(&mut self, target: NonNull<Header>, _path: &str) {
        // SAFETY: as in `MarkSink::edge`.
        let t = unsafe { target.as_ref() };
        let suspect = t.flags() & (VISITED | ALIVE) == VISITED;
        if !(suspect || B::BRANCH_FREE) {
            return;
        }
        if self.targets.len() == self.targets.capacity() {
            // (Out of line, as in `MarkSink::edge`.)
            return self.edge_growing(target);
        }
        // (Without a branch, any other target gets its count written
        // back. Saturating for the same reason as in `MarkSink::edge`.)
        t.set_scratch(t.scratch().saturating_sub(u32::from(suspect)));
        // SAFETY: room tested above.
        unsafe { B::push_if_room(self.targets, target, suspect) };
    }
}

impl<B: Branching> SuspectSink<'_, B> {
    /// [`edge`](EdgeSink::edge) when the edge list is full: grows it first.
    #[cold]
    #[inline(never)]
    fn edge_growing(&mut self, target: NonNull<Header>) {
        self.targets.reserve(1);
        self.edge(target, "");
    }
}

/// Receives edges while scanning: what a live node reaches is alive.
struct ScanSink<'a, B> {
    work: &'a mut Vec<NonNull<Header>>,
    /// Nodes not known to be alive yet.
    unreached: &'a mut usize,
    branching: PhantomData<B>,
}

impl<B: Branching> EdgeSink for ScanSink<'_, B> {
    #[inline]
    fn edge(&mut self, target: NonNull<Header>, _path: &str) {
        // SAFETY: as in `MarkSink::edge`.
        let t = unsafe { target.as_ref() };
        let reached = t.flags() & (VISITED | ALIVE) == VISITED;
        if !(reached || B::BRANCH_FREE) {
            return;
        }
        if self.work.len() == self.work.capacity() {
            // (Out of line, as in `MarkSink::edge`.)
            return self.edge_growing(target);
        }
        B::set_if(t, ALIVE, reached);
        *self.unreached -= usize::from(reached);
        // SAFETY: room tested above.
        unsafe { B::push_if_room(self.work, target, reached) };
    }
}

impl<B: Branching> ScanSink<'_, B> {
    /// [`edge`](EdgeSink::edge) when the work list is full: grows it first.
    #[cold]
    #[inline(never)]
    fn edge_growing(&mut self, target: NonNull<Header>) {
        self.work.reserve(1);
        self.edge(target, "");
    }
}
