//! The cycle collector: synchronous trial deletion (Bacon & Rajan, 2001),
//! with the bookkeeping done on the side, as CPython's `gc.c` does.
//!
//! # The algorithm
//!
//! Reference counting frees everything except cycles. A garbage cycle can only
//! appear when a count drops to a *non-zero* value, so those objects are
//! remembered as *candidates* ([`Heap::buffer_candidate`]). A collection then
//! looks only at the subgraph reachable from the candidates:
//!
//! 1. [`select_roots`]: drain the candidate buffer; skip objects that died
//!    meanwhile.
//! 2. [`mark_gray`]: walk the subgraph from the roots, giving each object a
//!    *trial count* equal to its strong count, and subtract one for every
//!    edge found inside the subgraph. What is left is the number of handles
//!    held from outside the subgraph: the stack, a static, another object not
//!    reachable from the candidates, or a value that could not be traced.
//! 3. [`scan`]: everything with a trial count above zero is held from outside,
//!    and so is everything it reaches: those are alive. The rest is garbage.
//! 4. [`free_garbage`]: free the garbage soundly, in this order —
//!    [`mark_collecting`] (weak handles stop upgrading, counts reaching zero
//!    stop freeing), [`finalize_garbage`] then [`find_resurrected`] (PEP 442:
//!    what a finalizer made reachable again survives), [`drop_garbage_values`],
//!    [`free_garbage_memory`] (objects still referenced after their value was
//!    dropped stay as *dead boxes* until their last handle goes).
//!
//! The trial counts, edges and node table live in a side table
//! ([`Subgraph`]); an object's header only holds its index in it. Real strong
//! counts are never touched, so a panic in user `Trace` code leaves the heap
//! exactly as it was. Every traversal works on explicit vectors: no recursion
//! proportional to the graph, whatever its depth.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::ptr::NonNull;

use crate::header::{Header, COLLECTING, FINALIZED, MAY_CYCLE, VALUE_DROPPED, VISITED};
use crate::heap::Heap;
use crate::trace::{EdgeSink, Tracer};

/// What one collection did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// Objects whose value the collection dropped.
    pub freed: usize,
    /// Garbage objects a finalizer made reachable again (kept alive).
    pub resurrected: usize,
    /// Candidates that were examined as roots.
    pub roots: usize,
    /// Objects in the subgraph reachable from the roots.
    pub examined: usize,
}

/// Collects the garbage cycles reachable from the candidates of `heap`.
/// Does nothing (and returns zeros) if a collection is already running.
pub(crate) fn collect(heap: &Heap) -> Outcome {
    if heap.collecting.get() {
        return Outcome::default();
    }
    heap.collecting.set(true);
    struct Done<'a>(&'a Heap);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.collecting.set(false);
        }
    }
    let _done = Done(heap);

    let mut rebuffer = Rebuffer {
        heap,
        objects: select_roots(heap),
    };
    let mut outcome = Outcome {
        roots: rebuffer.objects.len(),
        ..Outcome::default()
    };
    let garbage = {
        let mut subgraph = Subgraph::default();
        mark_gray(heap, &mut subgraph, &rebuffer.objects);
        let alive = scan(&subgraph);
        rebuffer.objects.clear(); // nothing can panic from here on
        outcome.examined = subgraph.nodes.len();
        // A dead box (its value already went with an earlier cycle) has no
        // edges and nothing left to drop: it is freed by its last handle, not
        // here, even when only garbage refers to it.
        let garbage: Vec<_> = (0..subgraph.nodes.len())
            .filter(|&i| !alive[i])
            .map(|i| subgraph.nodes[i])
            // SAFETY: nodes are live objects.
            .filter(|h| unsafe { h.as_ref() }.value_alive())
            .collect();
        heap.adapt_threshold(subgraph.nodes.len() - garbage.len());
        garbage
        // `subgraph` drops here and clears every VISITED flag.
    };
    if !garbage.is_empty() {
        let (freed, resurrected) = free_garbage(heap, garbage);
        outcome.freed = freed;
        outcome.resurrected = resurrected;
    }
    heap.collections.set(heap.collections.get() + 1);
    heap.freed_total
        .set(heap.freed_total.get() + outcome.freed as u64);
    outcome
}

/// Puts the roots back in the candidate buffer if marking or scanning is cut
/// short by a panic in user `Trace` code, so the next collection retries them.
struct Rebuffer<'a> {
    heap: &'a Heap,
    objects: Vec<NonNull<Header>>,
}

impl Drop for Rebuffer<'_> {
    fn drop(&mut self) {
        // Roots had strong > 0 when selected and no object was freed since
        // (only `Trace` code ran), so they are live.
        self.heap.rebuffer(self.objects.drain(..));
    }
}

/// Phase 1: drains the candidate buffer and returns the candidates that may
/// be part of a garbage cycle: those still referenced with an intact value.
/// (A candidate whose count reached zero is being dropped, or waits in the
/// drop queue; one whose value went with a collected cycle has no edges.)
fn select_roots(heap: &Heap) -> Vec<NonNull<Header>> {
    let mut roots = heap.take_candidates();
    roots.retain(|c| {
        // SAFETY: buffered objects are live (an object leaves the buffer
        // before its memory is freed).
        let h = unsafe { c.as_ref() };
        h.strong.get() > 0 && h.value_alive()
    });
    roots
}

/// The part of the heap a collection looks at: objects, their trial counts,
/// and their edges (as indices into `nodes`, in compressed-row form).
///
/// # Invariant
/// Every object in `nodes` has `VISITED` set and `scratch` equal to its index;
/// dropping the table clears `VISITED` on all of them.
#[derive(Default)]
struct Subgraph {
    nodes: Vec<NonNull<Header>>,
    /// Strong count minus the edges found inside the subgraph.
    trial: Vec<u32>,
    /// The value could not be traced: treat it as held from outside.
    untraceable: Vec<bool>,
    /// Edges of node `i` are `edges[edge_start[i]..edge_start[i + 1]]`.
    edge_start: Vec<u32>,
    edges: Vec<u32>,
}

impl Subgraph {
    fn add(&mut self, header: NonNull<Header>) -> u32 {
        // SAFETY: only live objects (strong > 0 or collector-owned) are added.
        let h = unsafe { header.as_ref() };
        let index = u32::try_from(self.nodes.len()).expect("rcycle: subgraph too large");
        h.set(VISITED);
        h.scratch.set(index);
        self.nodes.push(header);
        self.trial.push(h.strong.get());
        self.untraceable.push(false);
        index
    }

    /// Traces every node, appending newly found objects if `discover`
    /// (breadth first: the node list is the work queue). Without `discover`,
    /// edges to objects outside the table are ignored.
    fn trace_all(&mut self, heap: &Heap, discover: bool) {
        let mut i = 0;
        while i < self.nodes.len() {
            self.edge_start.push(self.edges.len() as u32);
            let header = self.nodes[i];
            // SAFETY: nodes are live objects.
            let h = unsafe { header.as_ref() };
            if h.value_alive() && h.has(MAY_CYCLE) {
                let trace = heap.type_of(h).info.trace;
                let mut sink = TrialSink {
                    subgraph: self,
                    discover,
                };
                let mut tracer = Tracer::new(&mut sink, None);
                // SAFETY: the value is intact (flag clear) and no user code
                // that could drop it runs during tracing (`Trace` contract).
                unsafe { trace(header, &mut tracer) };
                if !tracer.is_complete() {
                    self.untraceable[i] = true;
                }
            }
            i += 1;
        }
        self.edge_start.push(self.edges.len() as u32);
    }

    fn edges_of(&self, i: usize) -> &[u32] {
        &self.edges[self.edge_start[i] as usize..self.edge_start[i + 1] as usize]
    }
}

impl Drop for Subgraph {
    fn drop(&mut self) {
        for h in &self.nodes {
            // SAFETY: nodes stay allocated while the table exists: nothing is
            // freed before the table is dropped (see `collect`).
            unsafe { h.as_ref() }.clear(VISITED);
        }
    }
}

/// Receives edges while marking: subtracts one from the target's trial count.
struct TrialSink<'a> {
    subgraph: &'a mut Subgraph,
    discover: bool,
}

impl EdgeSink for TrialSink<'_> {
    fn edge(&mut self, target: NonNull<Header>, _path: &str) {
        // SAFETY: an edge is a live `Gc` handle, which keeps its target's
        // header readable.
        let t = unsafe { target.as_ref() };
        let index = if t.has(VISITED) {
            t.scratch.get()
        } else if self.discover {
            self.subgraph.add(target)
        } else {
            return;
        };
        let trial = &mut self.subgraph.trial[index as usize];
        // Saturating: only an unsound `Trace` impl could report more edges
        // than the target has handles.
        *trial = trial.saturating_sub(1);
        self.subgraph.edges.push(index);
    }
}

/// Phase 2: finds the subgraph reachable from `roots`, with trial counts
/// reduced by every internal edge.
fn mark_gray(heap: &Heap, subgraph: &mut Subgraph, roots: &[NonNull<Header>]) {
    for &root in roots {
        subgraph.add(root);
    }
    subgraph.trace_all(heap, true);
}

/// Phase 3: marks alive every node held from outside (trial count above zero,
/// or untraceable) and everything reachable from it. Returns the marks.
fn scan(subgraph: &Subgraph) -> Vec<bool> {
    let n = subgraph.nodes.len();
    let mut alive = vec![false; n];
    let mut work: Vec<u32> = (0..n)
        .filter(|&i| subgraph.trial[i] > 0 || subgraph.untraceable[i])
        .map(|i| i as u32)
        .collect();
    for &i in &work {
        alive[i as usize] = true;
    }
    while let Some(i) = work.pop() {
        for &j in subgraph.edges_of(i as usize) {
            if !alive[j as usize] {
                alive[j as usize] = true;
                work.push(j);
            }
        }
    }
    alive
}

/// Phase 4: frees a garbage set. Returns (values dropped, objects resurrected
/// by finalizers). Panics from finalizers and `Drop` impls are caught, the
/// work is finished, and the first one is re-raised at the end.
fn free_garbage(heap: &Heap, mut garbage: Vec<NonNull<Header>>) -> (usize, usize) {
    let mut first_panic = None;
    mark_collecting(&garbage);
    let mut resurrected = 0;
    if finalize_garbage(heap, &garbage, &mut first_panic) {
        let before = garbage.len();
        garbage = find_resurrected(heap, garbage);
        resurrected = before - garbage.len();
    }
    let freed = garbage.len();
    heap.drop_scope(|| {
        drop_garbage_values(heap, &garbage, &mut first_panic);
        free_garbage_memory(heap, &garbage);
    });
    if let Some(payload) = first_panic {
        resume_unwind(payload);
    }
    (freed, resurrected)
}

/// Marks the garbage set: from now on `WeakGc::upgrade` of a member returns
/// `None`, a member's count reaching zero frees nothing, and no member is
/// buffered as a candidate.
fn mark_collecting(garbage: &[NonNull<Header>]) {
    for h in garbage {
        // SAFETY: members are live until `free_garbage_memory`.
        unsafe { h.as_ref() }.set(COLLECTING);
    }
}

type Panic = Option<Box<dyn std::any::Any + Send>>;

/// Runs the finalizer of every member that has one and has not run it yet.
/// Returns whether any ran (then the set must be recounted).
fn finalize_garbage(heap: &Heap, garbage: &[NonNull<Header>], first_panic: &mut Panic) -> bool {
    let mut ran = false;
    for &header in garbage {
        // SAFETY: members are live; their values are intact in this phase
        // (only the collector drops a member's value).
        let h = unsafe { header.as_ref() };
        let entry = heap.type_of(h);
        if !entry.has_finalizer || h.has(FINALIZED) {
            continue;
        }
        h.set(FINALIZED);
        ran = true;
        let finalize = entry.info.finalize;
        // SAFETY: the value is intact (see above).
        let result = catch_unwind(AssertUnwindSafe(|| unsafe { finalize(header) }));
        if let Err(payload) = result {
            first_panic.get_or_insert(payload);
        }
    }
    ran
}

/// After finalizers ran: recounts the set (finalizers may have changed its
/// edges and added outside handles) and returns the members that are still
/// garbage. The others, and whatever they reach, survive: `COLLECTING` is
/// cleared on them and they go back to the candidate buffer, so a later
/// collection frees them once they are garbage again (they keep `FINALIZED`:
/// their finalizer never reruns).
fn find_resurrected(heap: &Heap, garbage: Vec<NonNull<Header>>) -> Vec<NonNull<Header>> {
    // If a `Trace` impl panics during the recount, every member survives this
    // collection and is handed back to the heap as if it had never been
    // selected.
    struct Release<'a>(&'a Heap, &'a [NonNull<Header>], bool);
    impl Drop for Release<'_> {
        fn drop(&mut self) {
            if self.2 {
                survive(self.0, self.1.iter().copied());
            }
        }
    }
    let (still_garbage, survivors) = {
        let mut subgraph = Subgraph::default();
        for &member in &garbage {
            subgraph.add(member);
        }
        let mut release = Release(heap, &garbage, true);
        subgraph.trace_all(heap, false);
        release.2 = false;
        let alive = scan(&subgraph);
        let (survivors, still_garbage): (Vec<_>, Vec<_>) =
            (0..garbage.len()).partition(|&i| alive[i]);
        (still_garbage, survivors)
        // `subgraph` drops here, clearing `VISITED` before members are
        // buffered (`scratch` then holds their buffer index).
    };
    survive(heap, survivors.iter().map(|&i| garbage[i]));
    still_garbage.into_iter().map(|i| garbage[i]).collect()
}

/// Hands members of a garbage set back to the heap alive: out of the
/// collector's hands, into the candidate buffer — or, if a finalizer dropped
/// every handle to one, into the drop queue.
fn survive(heap: &Heap, members: impl Iterator<Item = NonNull<Header>>) {
    for member in members {
        // SAFETY: members are live and their values intact.
        let h = unsafe { member.as_ref() };
        h.clear(COLLECTING);
        if h.strong.get() > 0 {
            heap.rebuffer([member]);
        } else {
            // SAFETY: strong zero, value intact, no longer `COLLECTING`.
            unsafe { heap.queue_drop(member) };
        }
    }
}

/// Drops every member's value. A member is flagged `VALUE_DROPPED` before its
/// destructor starts, so a `Drop` impl that reaches it through a neighbour
/// panics on deref instead of reading a value being torn down.
fn drop_garbage_values(heap: &Heap, garbage: &[NonNull<Header>], first_panic: &mut Panic) {
    for &header in garbage {
        // SAFETY: members stay allocated until `free_garbage_memory`: a count
        // reaching zero does not free a `COLLECTING` object.
        let h = unsafe { header.as_ref() };
        let drop_value = heap.type_of(h).info.drop_value;
        debug_assert!(h.value_alive(), "a garbage member's value is dropped once");
        h.set(VALUE_DROPPED);
        // SAFETY: the value is intact (only this loop drops members' values,
        // once each) and no reference to it can be created any more.
        let result = catch_unwind(AssertUnwindSafe(|| unsafe { drop_value(header) }));
        if let Err(payload) = result {
            first_panic.get_or_insert(payload);
        }
    }
}

/// Frees the members no handle refers to any more. A member that a `Drop`
/// impl resurrected (stashed a handle to) stays as a dead box: its value is
/// gone, deref panics, and its memory goes with its last handle.
fn free_garbage_memory(heap: &Heap, garbage: &[NonNull<Header>]) {
    for &header in garbage {
        // SAFETY: still allocated (see `drop_garbage_values`).
        let h = unsafe { header.as_ref() };
        h.clear(COLLECTING);
        if h.strong.get() == 0 {
            // SAFETY: strong is zero and the value dropped: the implicit weak
            // is released exactly once, here.
            unsafe { heap.release_weak(header) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_do_not_overlap() {
        let all = [
            crate::header::BUFFERED,
            VALUE_DROPPED,
            COLLECTING,
            FINALIZED,
            VISITED,
            MAY_CYCLE,
        ];
        let mut seen = 0;
        for f in all {
            assert_eq!(seen & f, 0);
            seen |= f;
        }
    }
}
