//! Memory hints for the collector's passes over the node table.
//!
//! A pass over the table reads each node in turn, and the nodes lie wherever
//! the program allocated them: every node costs a cache miss (often two:
//! a value bigger than the header's line spills into the next one), and the
//! pass waits for each in turn, because the loads come only once the node
//! before is done. The table says which nodes come next, so the pass asks
//! for them [`DISTANCE`] nodes ahead, and their lines arrive while it works
//! on the ones before. On the random-graph stress test (about 211,000 nodes
//! examined per run, scattered over the heap) this made the whole workload
//! about 8% faster; a graph allocated in the order it is walked (the 1M
//! ring) gains nothing, the hardware already streams it, and pays about 3%
//! for the extra instructions (benches/notes.md, change 25).
//!
//! A hint is only a hint: it never faults, reads nothing the program can
//! see, and a wrong one costs one wasted line of memory traffic. Where the
//! architecture has no stable prefetch instruction (or under Miri), it does
//! nothing.

use std::ptr::NonNull;

use crate::header::Header;

/// How many nodes ahead of the one being read a pass asks for memory: far
/// enough that a line from memory (a few hundred cycles) arrives in time,
/// near enough that it is still in the cache when the pass gets there.
/// On the stress test 4, 16 and 32 measured within the method's spread of
/// 8 (one process each); nothing better was found.
pub(super) const DISTANCE: usize = 8;

/// Which part of a node a pass is going to read.
#[derive(Clone, Copy)]
pub(super) enum Part {
    /// The header's line (the pass reads the header only).
    Header,
    /// The line after the header's (tracing: the value's fields mostly lie
    /// there once the value is bigger than what shares the header's line).
    /// For a small object this is a neighbour's line, which costs a little
    /// bandwidth and nothing else.
    NextLine,
}

/// The nodes of `nodes` in order, asking for the memory of the node
/// [`DISTANCE`] places further each time: the traversal of a pass that
/// reads the nodes of a table it does not change (the arithmetic of the
/// pass stays in its loop; this is the only cache-miss machinery it sees).
#[inline(always)]
pub(super) fn prefetching(
    nodes: &[NonNull<Header>],
    part: Part,
) -> impl Iterator<Item = NonNull<Header>> + '_ {
    nodes.iter().enumerate().map(move |(i, &node)| {
        prefetch_ahead(nodes, i, part);
        node
    })
}

/// Asks for the memory of the node [`DISTANCE`] places after `i` in
/// `nodes`, if there is one.
#[inline(always)]
pub(super) fn prefetch_ahead(nodes: &[NonNull<Header>], i: usize, part: Part) {
    if let Some(node) = nodes.get(i + DISTANCE) {
        let offset = match part {
            Part::Header => 0,
            Part::NextLine => 64,
        };
        // `wrapping_add`: the address may lie past the object's allocation
        // (a small object); it is only a hint, never dereferenced.
        prefetch(node.as_ptr().cast::<u8>().wrapping_add(offset));
    }
}

/// The hint itself: load the line holding `p` into every cache level.
#[inline(always)]
pub(super) fn prefetch(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: the function needs the `sse` target feature, which every
        // x86_64 CPU has (it is part of the architecture's baseline); the
        // instruction reads nothing and never faults, whatever the address.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(p.cast::<i8>()) };
    }
    #[cfg(not(all(target_arch = "x86_64", not(miri))))]
    let _ = p;
}
