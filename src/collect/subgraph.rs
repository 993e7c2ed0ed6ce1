//! The subgraph a collection examines (phases 2 and 3 of [`super`]): the
//! objects reachable from the roots, with their *trial counts* kept in their
//! own headers.
//!
//! Each object found gets `VISITED`, and its header's `scratch` word starts
//! at its strong count; every edge found from another object of the subgraph
//! subtracts one ([`Subgraph::mark`]). What is left counts the handles held
//! from outside the subgraph. [`Subgraph::scan`] then finds alive every
//! object held from outside and everything it reaches, tracing either
//! those objects a second time (setting `ALIVE`) or, when they are many and
//! the others few, only the others (the *suspects*, with a zero trial
//! count; the objects held from outside then leave the table's flags at
//! once, and the garbage is sought among the suspects only). The table
//! itself is one vector of object pointers (8 bytes per object examined,
//! reused as the garbage list), so a
//! collection touches little memory besides the objects: a side table of
//! counts and edges cost about 40 bytes per object, most of them fresh pages
//! for every big collection. Each pass over the table asks for the memory
//! of the nodes a few places ahead ([`super::prefetch`]): the nodes lie
//! wherever the program put them.
//!
//! Real strong counts are never touched, so a panic in user `Trace` code
//! leaves the heap exactly as it was once the table is dropped.

use std::marker::PhantomData;
use std::ptr::NonNull;

use super::branching::{pick, push_with_room, Branching, CoinToss, Predictable};
use super::edge_queue::{EdgeQueue, ProbeSink, QueuedSink, PROBES, WINDOW};
use super::prefetch::{prefetch_ahead, prefetching, Part};
use super::{Reach, Taking};
use crate::header::{
    Flags, Header, ACYCLIC, ALIVE, COLLECTING, MUT_BORROWED, UNTRACEABLE, VALUE_DROPPED, VISITED,
};
use crate::heap::Heap;
use crate::trace::{EdgeSink, Tracer};

mod scan;
use scan::SuspectEdges;

/// The flags only the subgraph's own nodes carry, all cleared with the table.
const SUBGRAPH_FLAGS: Flags = VISITED.union(ALIVE).union(UNTRACEABLE);

/// The objects a collection looks at, in the order they were found.
///
/// # Invariant
/// `queue` is empty outside [`mark`](Self::mark) (see [`EdgeQueue`]).
/// Every object in `nodes` is allocated and has `VISITED` set — except the
/// nodes [`scan_suspects`](Self::scan_suspects) found held from outside,
/// which leave the table's flags at once (they are alive;
/// [`Scanned::SuspectsOnly`] says it happened) — and while it is set its `scratch` word is its trial
/// count — or, once `scan_suspects` has read a suspect's count, the
/// suspect's index in its edge table — so no node is `BUFFERED`: a
/// collection empties the candidate buffer first, and no user code that
/// could buffer runs while the table is filled. Only nodes carry `VISITED`,
/// `ALIVE` or `UNTRACEABLE`; [`clear`](Self::clear), which dropping the
/// table calls (on a panic in user `Trace` code), clears them on every node.
#[derive(Default)]
pub(super) struct Subgraph {
    pub(super) nodes: Vec<NonNull<Header>>,
    /// [`scan`](Self::scan)'s work list.
    work: Vec<NonNull<Header>>,
    /// Edges [`mark`](Self::mark) holds back on a scattered graph (empty
    /// outside it).
    queue: EdgeQueue,
    /// [`scan_suspects`](Self::scan_suspects)'s record of the edges between
    /// suspects.
    suspect_edges: SuspectEdges,
    /// Nodes whose trial count is zero (kept up to date while marking).
    zero_trial: usize,
    /// Set by `mark` when a node could not be fully traced (`UNTRACEABLE`:
    /// held from outside, whatever its trial count).
    any_untraceable: bool,
    /// What [`scan`](Self::scan) left for taking the garbage.
    scanned: Scanned,
    /// Set by [`mark`](Self::mark) when it traced a window without branches
    /// (its edges pointed far away, and found new nodes and known ones
    /// alike): the scan's tests are then coin tosses too, and it makes them
    /// without branches ([`CoinToss`]).
    scattered: bool,
}

/// What [`Subgraph::scan`] leaves for [`Subgraph::take_garbage`]: where the
/// garbage is to be found.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(super) enum Scanned {
    /// Not scanned yet, or scanned by a walk over the whole table: every
    /// node still carries the table's flags, and the garbage is the nodes
    /// without `ALIVE`.
    #[default]
    Table,
    /// No node has a zero trial count: every node is alive (none carries
    /// `ALIVE`), and there is no garbage.
    AllAlive,
    /// [`scan_suspects`](Subgraph::scan_suspects) ran: the nodes held from
    /// outside no longer carry the table's flags, and the garbage is among
    /// the suspects (`work`).
    SuspectsOnly,
}

impl Subgraph {
    /// Adds an object that is not in the table yet, with its whole strong
    /// count as trial count.
    #[inline]
    pub fn add(&mut self, header: NonNull<Header>) {
        // SAFETY: only live objects (strong > 0, or owned by the collector)
        // are added.
        let strong = enter_table(unsafe { header.as_ref() });
        self.zero_trial += usize::from(strong == 0);
        self.nodes.push(header);
    }

    /// Fills the empty table with the candidates of `heap` that `is_root`
    /// keeps, in one pass over the buffer, each added as [`add`](Self::add)
    /// does; returns their number.
    ///
    /// Up to [`ADOPT_ABOVE`] candidates, the roots are copied into the
    /// table's own vector, and the buffer keeps its vector: each is
    /// reused by the next collection. Above it, the buffer's vector becomes
    /// the table, with no copy (the table's old, empty, vector goes to the
    /// heap for its next buffer): for a million candidates, the copy into a
    /// fresh table cost more than marking them.
    pub fn take_roots(&mut self, heap: &Heap, is_root: impl Fn(&NonNull<Header>) -> bool) -> usize {
        debug_assert!(self.nodes.is_empty() && self.zero_trial == 0);
        if heap.candidate_count() <= ADOPT_ABOVE {
            self.nodes.reserve(heap.candidate_count());
            let nodes = &mut self.nodes;
            heap.drain_candidates(|candidate| {
                if is_root(&candidate) {
                    enter_root(&candidate);
                    // SAFETY: room for every candidate was reserved above,
                    // and each adds at most one node.
                    unsafe { push_with_room(nodes, candidate) };
                }
            });
        } else {
            let roots = heap.take_candidates(|candidate| {
                is_root(candidate) && {
                    enter_root(candidate);
                    true
                }
            });
            heap.recycle_candidate_vec(std::mem::replace(&mut self.nodes, roots));
        }
        self.nodes.len()
    }

    /// Empties the table, clearing its flags on every node and keeping the
    /// vectors' memory.
    pub fn clear(&mut self) {
        for h in prefetching(&self.nodes, Part::Header) {
            // SAFETY: nodes stay allocated while they are in the table:
            // nothing is freed before the table is cleared.
            unsafe { h.as_ref() }.clear(SUBGRAPH_FLAGS);
        }
        self.nodes.clear();
        self.work.clear();
        self.queue.clear();
        self.suspect_edges.clear();
        self.zero_trial = 0;
        self.any_untraceable = false;
        self.scanned = Scanned::Table;
        self.scattered = false;
    }

    /// Whether none of the table's vectors holds more than `limit` entries'
    /// worth of memory (then it is worth keeping for the next collection).
    pub fn is_small(&self, limit: usize) -> bool {
        let e = &self.suspect_edges;
        [
            self.nodes.capacity(),
            self.work.capacity(),
            e.targets.capacity(),
            e.starts.capacity(),
            e.stack.capacity(),
        ]
        .iter()
        .all(|&c| c <= limit)
    }

    /// Traces every node, appending newly found objects with
    /// [`Reach::Discover`] (breadth first: the node list is the work queue).
    /// Each edge to a node subtracts one from its trial count; with
    /// [`Reach::TableOnly`], edges to objects outside the table are ignored.
    ///
    /// The table is traced in windows of [`WINDOW`] nodes. The last
    /// [`PROBES`] nodes of each window tell whether the edges point far
    /// away; if so, the next window holds each edge back in a queue, asking
    /// for its target's header first ([`super::edge_queue`]); and if, besides,
    /// the probes' edges so far found new nodes and known ones alike, the
    /// next window counts its edges without branching on which
    /// ([`CoinToss`]).
    pub fn mark(&mut self, heap: &Heap, reach: Reach) {
        let discover = reach == Reach::Discover;
        let mut i = 0;
        let mut queued = false;
        let mut coin_toss = false;
        let mut tally = Discoveries::default();
        loop {
            let window_end = i + WINDOW;
            #[cfg(test)]
            super::edge_queue::count_window(queued, coin_toss);
            let end = window_end - PROBES;
            match (queued, coin_toss) {
                (false, _) => self.mark_direct(heap, discover, &mut i, end),
                (true, false) => self.mark_queued::<Predictable>(heap, discover, &mut i, end),
                (true, true) => self.mark_queued::<CoinToss>(heap, discover, &mut i, end),
            }
            if i == self.nodes.len() && self.queue.is_empty() {
                // Done before the probes (a table of a few nodes): nothing
                // is left to probe for.
                break;
            }
            let distant = self.mark_probing(heap, discover, &mut i, window_end, &mut tally);
            if i == self.nodes.len() {
                if self.queue.is_empty() {
                    break;
                }
                // The held-back edges may find more nodes: go on.
                self.drain_queue(discover);
            } else if queued && !distant {
                self.drain_queue(discover);
            }
            queued = distant;
            coin_toss = distant && tally.is_mixed();
            self.scattered |= coin_toss;
        }
    }

    /// Traces nodes `*i..end` (or to the end of the table), counting each
    /// edge at once. This is the loop compact graphs spend their marking in:
    /// keep it free of anything else.
    #[inline(always)]
    fn mark_direct(&mut self, heap: &Heap, discover: bool, i: &mut usize, end: usize) {
        while *i < end && *i < self.nodes.len() {
            let header = self.nodes[*i];
            prefetch_ahead(&self.nodes, *i, Part::NextLine);
            *i += 1;
            let mut sink =
                MarkSink::<Predictable>::new(&mut self.nodes, &mut self.zero_trial, discover);
            if !trace_node(heap, header, &mut sink) {
                self.any_untraceable = true;
            }
        }
    }

    /// [`mark_direct`](Self::mark_direct) with each edge held back in the
    /// queue; edges may be left in it.
    fn mark_queued<B: Branching>(
        &mut self,
        heap: &Heap,
        discover: bool,
        i: &mut usize,
        end: usize,
    ) {
        while *i < end && *i < self.nodes.len() {
            let header = self.nodes[*i];
            prefetch_ahead(&self.nodes, *i, Part::NextLine);
            *i += 1;
            let mut sink = QueuedSink {
                direct: MarkSink::<B>::new(&mut self.nodes, &mut self.zero_trial, discover),
                queue: &mut self.queue,
            };
            if !trace_node(heap, header, &mut sink) {
                self.any_untraceable = true;
            }
        }
    }

    /// Traces nodes `*i..end` (or to the end of the table), counting each
    /// edge at once; returns whether most of their edges pointed far away,
    /// and adds their edges and the new nodes they found to `tally`.
    fn mark_probing(
        &mut self,
        heap: &Heap,
        discover: bool,
        i: &mut usize,
        end: usize,
        tally: &mut Discoveries,
    ) -> bool {
        let known = self.nodes.len();
        let mut probe = ProbeSink::new(MarkSink::<Predictable>::new(
            &mut self.nodes,
            &mut self.zero_trial,
            discover,
        ));
        while *i < end && *i < probe.direct.nodes.len() {
            probe.source = probe.direct.nodes[*i];
            *i += 1;
            if !trace_node(heap, probe.source, &mut probe) {
                self.any_untraceable = true;
            }
        }
        tally.edges += probe.edges();
        let distant = probe.mostly_distant();
        tally.found += self.nodes.len() - known;
        distant
    }

    /// Counts the edges held back in the queue.
    fn drain_queue(&mut self, discover: bool) {
        self.queue.drain(&mut MarkSink::<Predictable>::new(
            &mut self.nodes,
            &mut self.zero_trial,
            discover,
        ));
    }

    /// Empties the table (clearing its flags) and leaves in `garbage` the
    /// nodes that are not `ALIVE` and whose value is intact, in the order
    /// they were found, marked `COLLECTING` when [`Taking::Collect`]. (A dead box, whose value
    /// went with an earlier cycle, has nothing left to drop: its last handle
    /// frees it.)
    pub fn take_garbage(&mut self, garbage: &mut Vec<NonNull<Header>>, taking: Taking) {
        let flag = match taking {
            Taking::Collect => COLLECTING,
            Taking::DryRun => Flags::NONE,
        };
        garbage.clear();
        if self.scanned == Scanned::AllAlive {
            self.clear();
            return;
        }
        if self.scanned == Scanned::SuspectsOnly {
            // Only the suspects still carry the table's flags, and hold the
            // garbage (in the order found: suspects are in node order).
            self.nodes.clear();
            for header in prefetching(&self.work, Part::Header) {
                // SAFETY: suspects are nodes, allocated (struct invariant).
                let h = unsafe { header.as_ref() };
                if !h.has(ALIVE | VALUE_DROPPED) {
                    self.nodes.push(header);
                    h.set(flag);
                }
                h.clear(SUBGRAPH_FLAGS);
            }
            std::mem::swap(&mut self.nodes, garbage);
            self.clear();
            return;
        }
        // The garbage is kept in `nodes`, in order, which then becomes the
        // garbage list: no second vector as long as the first.
        self.nodes.retain(|header| {
            // SAFETY: nodes are allocated (struct invariant).
            let h = unsafe { header.as_ref() };
            let is_garbage = !h.has(ALIVE | VALUE_DROPPED);
            if is_garbage {
                h.set(flag);
            }
            h.clear(SUBGRAPH_FLAGS);
            is_garbage
        });
        std::mem::swap(&mut self.nodes, garbage);
        self.clear();
    }

    /// Whether `header`, a node, was found alive by [`scan`](Self::scan).
    pub fn is_alive(&self, header: NonNull<Header>) -> bool {
        // SAFETY: nodes are allocated (struct invariant); the caller passes
        // a node.
        let h = unsafe { header.as_ref() };
        // (A node without `VISITED` left the table early, held from outside.)
        self.scanned == Scanned::AllAlive || h.has(ALIVE) || !h.has(VISITED)
    }
}

impl Drop for Subgraph {
    fn drop(&mut self) {
        self.clear();
    }
}

/// What the probes of a [`Subgraph::mark`] pass saw so far: how many edges,
/// and how many of them found a node new to the table.
#[derive(Default)]
struct Discoveries {
    edges: usize,
    found: usize,
}

impl Discoveries {
    /// Whether the edges found both new nodes and known ones, at least one
    /// in sixteen of each, so that a branch on which would often be
    /// mispredicted. (The stress graph's marking finds about 89% new, and
    /// gains much from going without the branch; a graph whose every node
    /// is a root finds none new, and loses.)
    fn is_mixed(&self) -> bool {
        16 * self.found > self.edges && 16 * self.found < 15 * self.edges
    }
}

/// Above this many candidates, the candidate buffer's vector becomes the
/// node table ([`Subgraph::take_roots`]): as many as the collector keeps in
/// its vectors between collections, so below it both vectors are reused.
const ADOPT_ABOVE: usize = super::Scratch::KEEP_UP_TO;

/// Gives an object its place in the table: `VISITED`, and its whole strong
/// count as trial count (returned). Its scratch word must be free (the
/// object is not `BUFFERED`).
#[inline(always)]
fn enter_table(h: &Header) -> u32 {
    h.set(VISITED);
    let strong = h.strong();
    h.set_scratch(strong);
    strong
}

/// [`enter_table`] for a root taken from the candidate buffer (its trial
/// count starts above zero: a root is referenced).
#[inline(always)]
fn enter_root(candidate: &NonNull<Header>) {
    // SAFETY: buffered objects are live (an object leaves the buffer before
    // its memory is freed); draining the buffer has just cleared
    // `BUFFERED`, so the scratch word is free for the trial count.
    enter_table(unsafe { candidate.as_ref() });
}

/// Traces a node's value, if it has one that may hold handles, and flags the
/// node `UNTRACEABLE` if part of the value could not be inspected. Returns
/// whether the value was fully traced.
#[inline]
fn trace_node(heap: &Heap, header: NonNull<Header>, sink: &mut dyn EdgeSink) -> bool {
    // SAFETY: nodes are allocated.
    let h = unsafe { header.as_ref() };
    if h.has(VALUE_DROPPED | ACYCLIC | MUT_BORROWED) {
        // Nothing to trace (no value, or one that cannot own a handle), or
        // a value nobody else may read.
        return h.has(VALUE_DROPPED | ACYCLIC) || lent_out(h);
    }
    let trace = heap.type_of(h).info.trace;
    let mut tracer = Tracer::new(sink, None);
    // SAFETY: the value is intact (flag clear) and no user code that could
    // drop it runs during tracing (`Trace` contract).
    unsafe { trace(header, &mut tracer) };
    let complete = tracer.is_complete();
    if !complete {
        h.set(UNTRACEABLE);
    }
    complete
}

/// [`trace_node`] for a node whose value is lent out by a `GcMut`: nobody
/// else may read it, so the node is `UNTRACEABLE` (held from outside), and
/// what it points to looks held from outside too: nothing it reaches is
/// freed. Returns `false` (not fully traced).
#[cold]
#[inline(never)]
fn lent_out(h: &Header) -> bool {
    h.set(UNTRACEABLE);
    false
}

/// Receives edges while marking: subtracts one from the target's trial
/// count, entering it in the table first if it is new. `B` says whether
/// that test is a branch ([`Predictable`], for windows of a compact graph)
/// or not ([`CoinToss`], for the queued windows of a scattered one).
struct MarkSink<'a, B> {
    nodes: &'a mut Vec<NonNull<Header>>,
    zero_trial: &'a mut usize,
    discover: bool,
    branching: PhantomData<B>,
}

impl<'a, B> MarkSink<'a, B> {
    fn new(nodes: &'a mut Vec<NonNull<Header>>, zero_trial: &'a mut usize, discover: bool) -> Self {
        MarkSink {
            nodes,
            zero_trial,
            discover,
            branching: PhantomData,
        }
    }
}

impl<B: Branching> EdgeSink for MarkSink<'_, B> {
    #[inline]
    fn edge(&mut self, target: NonNull<Header>, _path: &str) {
        // SAFETY: an edge is a live `Gc` handle, which keeps its target's
        // header readable; an edge the queue held back still is one, as
        // nothing drops a handle while marking (see `EdgeQueue`).
        let t = unsafe { target.as_ref() };
        if B::BRANCH_FREE && self.discover {
            if self.nodes.len() == self.nodes.capacity() {
                // (Out of line, as below.)
                return self.discover_growing(target);
            }
            let found = count_edge_entering(t, self.zero_trial);
            // SAFETY: the table has room (tested above; the header writes
            // do not touch it).
            unsafe { B::push_if_room(self.nodes, target, found) };
            return;
        }
        if !t.has(VISITED) {
            if !self.discover {
                return;
            }
            if self.nodes.len() == self.nodes.capacity() {
                // Out of line and in tail position (see `push_with_room`).
                return self.discover_growing(target);
            }
            enter_table(t);
            // SAFETY: the table has room (tested above; the header writes
            // do not touch it).
            unsafe { push_with_room(self.nodes, target) };
        }
        Self::count_edge(t, self.zero_trial);
    }
}

impl<B: Branching> MarkSink<'_, B> {
    /// [`edge`](EdgeSink::edge) for a newly found target when the table is
    /// full: grows it first.
    #[cold]
    #[inline(never)]
    fn discover_growing(&mut self, target: NonNull<Header>) {
        self.nodes.reserve(1);
        self.edge(target, "");
    }

    /// Subtracts the edge from the target's trial count.
    #[inline(always)]
    fn count_edge(t: &Header, zero_trial: &mut usize) {
        // Only an unsound `Trace` impl could report more edges than the
        // target has handles: then the count stays at zero.
        match t.scratch() {
            0 => {}
            1 => {
                t.set_scratch(0);
                *zero_trial += 1;
            }
            n => t.set_scratch(n - 1),
        }
    }
}

/// Enters `t`, an edge's target, in the table if it is not there yet (as
/// [`enter_table`] does), then subtracts the edge from its trial count as
/// `MarkSink::count_edge` does; returns whether `t` was entered. `t`'s
/// scratch word must be free if it is not `VISITED` (no node is
/// `BUFFERED` while marking).
///
/// Without a branch on either test ([`CoinToss`]'s way): in a scattered
/// graph, whether an edge finds a new object or one already in the table is
/// a coin toss, and mispredicting it cost the stress graph's marking about
/// a fifth of its time. A target already in the table gets its flags and
/// count written back, the count one less.
#[inline(always)]
fn count_edge_entering(t: &Header, zero_trial: &mut usize) -> bool {
    let new = !t.has(VISITED);
    let count = pick(new, t.strong(), t.scratch());
    t.set(VISITED);
    // (Saturating at zero, as `count_edge` does.)
    t.set_scratch(count - u32::from(count != 0));
    *zero_trial += usize::from(count == 1);
    new
}
