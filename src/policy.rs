//! The automatic-collection policy, all of it: when a thread's heap collects
//! on its own.
//!
//! The heap only counts and compares (the mechanism): it calls the runtime
//! when its candidate buffer reaches its limit, and when
//! the number of objects passes its live limit. This file decides what those
//! two limits are, and whether a trigger collects:
//!
//! * **Candidates.** A collection starts when [`Policy::threshold`]
//!   candidates (objects whose count dropped to a non-zero value) are
//!   buffered, [`DEFAULT_THRESHOLD`] unless [`crate::set_threshold`] says
//!   otherwise. After each collection the limit adapts
//!   ([`Policy::after_scan`]): at least as many candidates as the live
//!   objects the collection walked, so walking them again is amortized; as
//!   many as there are objects after a collection that found no garbage
//!   (its candidates were live data in use).
//! * **Growth.** Candidates also are collected when the number of objects
//!   has grown by half (at least [`MIN_GROWTH`]) since the last collection
//!   ([`Policy::after_collection`]): one candidate can be the last handle into
//!   a big dead structure, and a candidate count alone would let it wait.
//! * **Off, running, exited.** No trigger collects while collection is
//!   disabled ([`crate::disable`]; the candidate trigger is lifted until it
//!   is enabled again, so that a bulk load with collection off pays nothing
//!   per candidate) or already running. After the thread's
//!   teardown the candidate limit is 0: every candidate is a trigger
//!   ([`Policy::enter_exited`]).
//! * **Thread exit.** The teardown runs at most [`FINAL_COLLECTIONS`]
//!   collections.

use std::cell::Cell;

use crate::heap::Heap;

/// The number of buffered candidates that starts an automatic collection,
/// unless [`crate::set_threshold`] says otherwise.
pub(crate) const DEFAULT_THRESHOLD: usize = 10_000;

/// The number of objects may grow by this many (or by half, if more) between
/// collections before waiting candidates are collected. A candidate count
/// alone lets unbounded garbage wait: one candidate can be the last handle
/// into a big dead structure (the root of a tree whose nodes point back to
/// their parents), and 10,000 of those can be hundreds of thousands of
/// objects.
const MIN_GROWTH: usize = 8192;

/// The most collections the thread-exit teardown runs. One usually frees
/// everything; another is needed only where a `Drop` impl or finalizer let go
/// of handles that kept more cycles alive. A `Drop` that makes a new garbage
/// cycle every time it runs would keep an unbounded loop collecting forever:
/// after this many rounds, what is still waiting is left to the exited heap
/// (collected at the next trigger, if any comes; otherwise leaked, which is
/// safe).
pub(crate) const FINAL_COLLECTIONS: usize = 8;

/// One thread's policy settings and what it remembers between collections.
pub(crate) struct Policy {
    enabled: Cell<bool>,
    /// The candidate threshold set by the user (or the default).
    threshold: Cell<usize>,
    /// The live objects the last collection walked.
    last_survivors: Cell<usize>,
}

/// What a trigger does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Decision {
    Collect,
    Wait,
}

impl Policy {
    /// The policy of a new heap, whose limits it sets.
    pub fn new(heap: &Heap) -> Policy {
        heap.set_candidate_limit(DEFAULT_THRESHOLD);
        heap.set_live_limit(MIN_GROWTH);
        Policy {
            enabled: Cell::new(true),
            threshold: Cell::new(DEFAULT_THRESHOLD),
            last_survivors: Cell::new(0),
        }
    }

    /// Whether a trigger (candidates or growth) collects now: collection is
    /// on, none is running, and there is something to collect.
    ///
    /// While collection is off, the candidate trigger is lifted: else every
    /// candidate buffered past the limit would call up again, only to wait
    /// ([`set_enabled`](Self::set_enabled) puts it back).
    pub fn on_trigger(&self, heap: &Heap) -> Decision {
        if !self.enabled.get() {
            if !heap.is_exited() {
                heap.set_candidate_limit(usize::MAX);
            }
            return Decision::Wait;
        }
        if !heap.is_collecting() && heap.candidate_count() > 0 {
            Decision::Collect
        } else {
            Decision::Wait
        }
    }

    /// Turns automatic collection on or off. Turned back on, a candidate
    /// trigger lifted while it was off comes back at the threshold (so the
    /// candidates buffered meanwhile are collected at the next one).
    pub fn set_enabled(&self, heap: &Heap, on: bool) {
        if on && !self.enabled.get() && heap.candidate_limit() == usize::MAX {
            heap.set_candidate_limit(self.threshold.get());
        }
        self.enabled.set(on)
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.get()
    }

    /// Sets the candidate threshold (at least 1); takes effect at once,
    /// except on an exited heap (whose limit stays 0).
    pub fn set_threshold(&self, heap: &Heap, n: usize) {
        let n = n.max(1);
        self.threshold.set(n);
        if !heap.is_exited() {
            heap.set_candidate_limit(n);
        }
    }

    pub fn threshold(&self) -> usize {
        self.threshold.get()
    }

    /// After a collection's scan walked `survivors` live objects and found
    /// `garbage` objects (before the garbage is freed): the next collection
    /// waits until at least that many candidates have been buffered (or
    /// until the number of objects has grown: [`after_collection`]), so
    /// walking them again is amortized.
    ///
    /// A collection that found no garbage at all waits for as many
    /// candidates as there are objects: its candidates were live data that
    /// the program was using (each use of a live object makes it a
    /// candidate), and a collection started from part of such a walk would
    /// cover part of the heap only, and set a low trigger that fires again
    /// halfway through the next walk. Garbage that appears meanwhile is still
    /// collected by the growth trigger.
    ///
    /// An exited heap keeps a limit of 0: every candidate is a trigger.
    ///
    /// [`after_collection`]: Self::after_collection
    pub fn after_scan(&self, heap: &Heap, survivors: usize, garbage: usize) {
        let mut next = self.threshold.get().max(survivors.saturating_add(1));
        if garbage == 0 {
            next = next.max(heap.live_objects().saturating_add(1));
        }
        if heap.is_exited() {
            next = 0;
        }
        heap.set_candidate_limit(next);
        self.last_survivors.set(survivors);
    }

    /// After a collection, its garbage freed (and after a growth trigger that
    /// did not collect): the next growth trigger comes after `MIN_GROWTH`
    /// more objects, or half as many as now, or as many as the last
    /// collection found alive (so that walking them again is amortized, as
    /// for the candidate threshold), whichever is more.
    pub fn after_collection(&self, heap: &Heap) {
        let live = heap.live_objects();
        let step = MIN_GROWTH.max(live / 2).max(self.last_survivors.get());
        heap.set_live_limit(live.saturating_add(step));
    }

    /// After the thread's teardown: every buffered candidate is a trigger.
    pub fn enter_exited(&self, heap: &Heap) {
        heap.set_candidate_limit(0);
    }
}

#[cfg(test)]
mod tests {
    use crate::runtime::runtime;
    use crate::{Gc, Trace};
    use std::cell::RefCell;

    #[derive(Trace)]
    struct Node {
        next: RefCell<Option<Gc<Node>>>,
    }

    /// Makes `n` candidates that stay alive (each held by the returned
    /// vector and by itself).
    fn candidates(n: usize) -> Vec<Gc<Node>> {
        (0..n)
            .map(|_| {
                let a = Gc::new(Node {
                    next: RefCell::new(None),
                });
                *a.next.borrow_mut() = Some(a.clone());
                drop(a.clone());
                a
            })
            .collect()
    }

    #[test]
    fn the_candidate_trigger_is_lifted_while_collection_is_off() {
        let rt = runtime();
        let (heap, policy) = (&rt.heap, &rt.collector.policy);
        crate::set_threshold(100);
        crate::disable();
        let held = candidates(150);
        assert_eq!(heap.candidate_count(), 150, "nothing collected while off");
        assert_eq!(heap.candidate_limit(), usize::MAX, "the trigger is lifted");
        crate::enable();
        assert_eq!(heap.candidate_limit(), 100, "back at the threshold");
        // The next candidate collects the waiting ones (all alive).
        let more = candidates(1);
        assert_eq!(heap.candidate_count(), 0);
        assert!(policy.is_enabled());
        // Turned off and on with no trigger meanwhile, the limit is kept.
        let limit = heap.candidate_limit();
        crate::disable();
        crate::enable();
        assert_eq!(heap.candidate_limit(), limit);
        for node in held.iter().chain(&more) {
            node.next.borrow_mut().take();
        }
    }
}
