//! Two ways to write a test whose outcome decides a write: with a branch
//! ([`Predictable`]) or without one ([`CoinToss`]).
//!
//! The collector's passes ask the same questions of every node and every
//! edge: is this target in the table yet, is this node held from outside,
//! is this target a suspect. On a graph laid out the way it is walked (a
//! list, a ring, a tree, a few small cycles) the answers come in long runs,
//! the branch predictor guesses them, and a branch costs nearly nothing. On
//! a scattered graph (edges added in random order) they are coin tosses, and
//! each wrong guess throws away the work in flight, which in a pass that
//! waits on memory is the loads already under way. [`CoinToss`] computes the
//! outcome into a mask and writes either way: no branch, a few more stores.
//!
//! Measured (benches/notes.md, issue 23, eighth round): on the stress graph
//! the branch-free passes took its collections from about 5.9 to 4.8 ms,
//! but used everywhere they made other graphs 5-22% slower (the extra
//! stores, where nothing was mispredicted). So marking uses [`CoinToss`] in
//! the windows it traces with the edge queue (the probes found their edges
//! far from their sources: see [`super::edge_queue`]) once the probes have
//! seen edges find both new nodes and known ones, and the scan uses it when
//! marking did (`Subgraph::scattered`).

use crate::header::{Flags, Header};

#[cfg(test)]
thread_local! {
    /// Scans walked `[with branches, without]` on this thread (tests only).
    static SCANS: std::cell::Cell<[usize; 2]> = const { std::cell::Cell::new([0; 2]) };
}

/// Counts a scan's walk, with branches or without (tests only).
#[cfg(test)]
pub(super) fn count_scan(coin_toss: bool) {
    SCANS.with(|s| {
        let mut n = s.get();
        n[usize::from(coin_toss)] += 1;
        s.set(n);
    });
}

/// Scans walked `[with branches, without]` on this thread so far (tests
/// only).
#[cfg(test)]
pub(super) fn scans() -> [usize; 2] {
    SCANS.with(std::cell::Cell::get)
}

/// How a pass writes what a test decides.
pub(super) trait Branching {
    /// Whether the tests are made without branches (for code whose two
    /// forms differ in more than these helpers).
    const BRANCH_FREE: bool;

    /// Sets `flags` on `h` if `cond`.
    fn set_if(h: &Header, flags: Flags, cond: bool);

    /// Clears `flags` on `h` unless `keep`.
    fn clear_unless(h: &Header, flags: Flags, keep: bool);

    /// Makes room in `v` for `additional` more [`push_if`](Self::push_if)
    /// calls, if this way needs it: [`CoinToss`] writes past the end even
    /// when it does not push, where [`Predictable`] grows the vector as
    /// `push` does, when it pushes. (Reserving a whole table's worth for
    /// `Predictable` too made the linked lists' collections slower.)
    fn reserve_for<T>(v: &mut Vec<T>, additional: usize);

    /// Appends `x` to `v` if `keep`.
    ///
    /// # Safety
    /// For [`CoinToss`], room reserved with [`reserve_for`](Self::reserve_for)
    /// for this call: `v.len() < v.capacity()`.
    unsafe fn push_if<T: Copy>(v: &mut Vec<T>, x: T, keep: bool);

    /// [`push_if`](Self::push_if) for a caller that has tested for room
    /// (an edge sink, which grows its vector out of line): without `push`'s
    /// test.
    ///
    /// # Safety
    /// `v.len() < v.capacity()`.
    unsafe fn push_if_room<T: Copy>(v: &mut Vec<T>, x: T, keep: bool);
}

/// Plain branches: for tests whose outcomes come in runs.
pub(super) struct Predictable;

/// No branches: for tests whose outcomes are coin tosses.
pub(super) struct CoinToss;

impl Branching for Predictable {
    const BRANCH_FREE: bool = false;

    #[inline(always)]
    fn set_if(h: &Header, flags: Flags, cond: bool) {
        if cond {
            h.set(flags);
        }
    }

    #[inline(always)]
    fn clear_unless(h: &Header, flags: Flags, keep: bool) {
        if !keep {
            h.clear(flags);
        }
    }

    #[inline(always)]
    fn reserve_for<T>(_: &mut Vec<T>, _: usize) {}

    #[inline(always)]
    unsafe fn push_if<T: Copy>(v: &mut Vec<T>, x: T, keep: bool) {
        if keep {
            v.push(x);
        }
    }

    #[inline(always)]
    unsafe fn push_if_room<T: Copy>(v: &mut Vec<T>, x: T, keep: bool) {
        if keep {
            // SAFETY: room (caller).
            unsafe { push_with_room(v, x) };
        }
    }
}

impl Branching for CoinToss {
    const BRANCH_FREE: bool = true;

    #[inline(always)]
    fn set_if(h: &Header, flags: Flags, cond: bool) {
        h.set_if(flags, cond);
    }

    #[inline(always)]
    fn clear_unless(h: &Header, flags: Flags, keep: bool) {
        h.clear_unless(flags, keep);
    }

    #[inline(always)]
    fn reserve_for<T>(v: &mut Vec<T>, additional: usize) {
        v.reserve(additional);
    }

    #[inline(always)]
    unsafe fn push_if_room<T: Copy>(v: &mut Vec<T>, x: T, keep: bool) {
        // SAFETY: the same requirement (caller).
        unsafe { Self::push_if(v, x, keep) }
    }

    #[inline(always)]
    unsafe fn push_if<T: Copy>(v: &mut Vec<T>, x: T, keep: bool) {
        let len = v.len();
        debug_assert!(len < v.capacity());
        // SAFETY: the slot at `len` is allocated (caller); the length covers
        // it only if it was written.
        unsafe {
            v.as_mut_ptr().add(len).write(x);
            v.set_len(len + usize::from(keep));
        }
    }
}

/// `if cond { a } else { b }`, computed with a mask so that the compiler
/// does not make a branch of it.
#[inline(always)]
pub(super) fn pick(cond: bool, a: u32, b: u32) -> u32 {
    let mask = u32::from(cond).wrapping_neg();
    b ^ ((a ^ b) & mask)
}

/// Appends to a vector that has room, without `push`'s test.
///
/// The sinks test for room before they write to the target's header and
/// grow the vector out of line, in tail position, when it is full: with the
/// growth inline, that one possible call made every edge save and restore
/// five registers. `push` would then test again, after reloading the length
/// (the compiler cannot tell that the header writes leave the vector alone).
///
/// # Safety
/// `v.len() < v.capacity()`.
#[inline(always)]
pub(super) unsafe fn push_with_room<T>(v: &mut Vec<T>, x: T) {
    let len = v.len();
    debug_assert!(len < v.capacity());
    // SAFETY: the slot at `len` is allocated (caller) and is written before
    // the length covers it.
    unsafe {
        v.as_mut_ptr().add(len).write(x);
        v.set_len(len + 1);
    }
}
