//! Snapshot ids: the number that names an object in every heap snapshot and
//! DevTools export of its lifetime, and that no other object of the process
//! ever gets (DevTools' Comparison view and memlab match objects across
//! snapshots by it).
//!
//! An address is not enough (a freed object's slot is soon reused), and the
//! allocation paths must not pay for ids nobody asks for. So:
//!
//! - an object gets an id only when a snapshot or an export first sees it,
//!   from a process-wide counter (odd numbers from 5, as in V8: 1 and 3 are
//!   the DevTools root and `(held outside)`), handed to each heap in blocks;
//! - its header's [`HAS_ID`] flag says it has one, and the heap's table
//!   (address → id) holds it. A new object's header is written whole and a
//!   freed slot's state is zeroed, so an object at an address in the table
//!   whose flag is clear is a *new* object: it gets a fresh id;
//! - each snapshot rebuilds the table from the objects allocated then
//!   ([`refresh`]), so it holds no more than one entry per object allocated
//!   at the last snapshot, plus those seen since. A heap that never takes a
//!   snapshot has no table at all.
//!
//! The table is two parts: the entries as of the last `refresh`, sorted by
//! address (`refresh` walks the heap in address order and merges them in
//! one sequential pass: no hash lookup per object, which at 10M objects
//! cost a cache miss each), and the ids given since, in a hash map that
//! takes precedence (an address of the sorted part may have been freed and
//! reused by an object given an id since).
//!
//! Invariant: every allocated object whose header has `HAS_ID` set has an
//! entry at its address in its heap's table (in the recent part if there
//! is one there, else in the sorted part), holding its id. (The flag is set
//! only together with the entry; entries go only in [`refresh`], which
//! keeps those of every flagged object still allocated.) Entries of freed
//! objects may linger until the next `refresh`; they are never read, since
//! only flagged objects are looked up, and a flagged object at a reused
//! address got its entry in the recent part.
//!
//! Ids are 32-bit, as DevTools stores them: after about 2.1 billion objects
//! have been given one in a process, numbering starts again from 5.

use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

use super::big_vec::BigVec;
use crate::addr_map::AddrMap;
use crate::header::{Header, HAS_ID};
use crate::heap::Heap;

/// The DevTools root's id (V8's).
pub(crate) const ROOT_ID: u32 = 1;
/// The `(held outside)` node's id (V8's `(GC roots)`).
pub(crate) const HELD_OUTSIDE_ID: u32 = 3;
/// Ids handed to a heap at a time (each block holds `BLOCK / 2` odd ids).
const BLOCK: u32 = 2 * 1024;
/// The first id of the next block; odd, so every id is.
static NEXT_BLOCK: AtomicU32 = AtomicU32::new(5);

/// One heap's table of snapshot ids (see the module documentation).
#[derive(Default)]
struct SnapshotIds {
    /// (address, id) of every object that had an id at the last `refresh`,
    /// ascending by address.
    sorted: BigVec<(usize, u32)>,
    /// Address → id, for the ids given since the last `refresh`.
    recent: AddrMap<u32>,
    /// The heap's current block of ids: `next..end`, by steps of 2.
    next: u32,
    end: u32,
}

impl SnapshotIds {
    /// The id in the table at `addr` (the recent part first).
    fn lookup(&self, addr: usize) -> Option<u32> {
        if let Some(&id) = self.recent.get(&addr) {
            return Some(id);
        }
        let i = self.sorted.binary_search_by_key(&addr, |e| e.0).ok()?;
        Some(self.sorted[i].1)
    }

    /// An id no object of the process has had.
    fn fresh(&mut self) -> u32 {
        loop {
            if self.next == self.end {
                self.next = NEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
                self.end = self.next.wrapping_add(BLOCK);
            }
            let id = self.next;
            self.next = id.wrapping_add(2);
            // After a wrap-around, skip the ids of the two synthetic nodes.
            if id > HELD_OUTSIDE_ID {
                return id;
            }
        }
    }

    /// The id of the object at `header`, given now if it has none.
    ///
    /// # Safety
    /// `header` is an allocated object of the heap this table belongs to.
    unsafe fn id_of(&mut self, header: NonNull<Header>) -> u32 {
        // SAFETY: allocated (the caller's guarantee), so readable.
        let h = unsafe { header.as_ref() };
        let addr = header.as_ptr() as usize;
        if h.has(HAS_ID) {
            if let Some(id) = self.lookup(addr) {
                return id;
            }
            // Not reached (see the invariant); a lost table (a panic while
            // it was taken out) is repaired by giving a new id.
        }
        let id = self.fresh();
        self.recent.insert(addr, id);
        h.set(HAS_ID);
        id
    }
}

thread_local! {
    /// This thread's table (`None` until the first snapshot or DevTools
    /// export). Taken out and put back around operations that run no user
    /// code. The reporter keeps it: the heap does not know snapshots exist.
    /// (It may outlive a heap freed after thread exit: its entries are only
    /// read for objects whose header has `HAS_ID`, which a new heap's
    /// objects get only with a new entry; see the invariant above.)
    static TABLE: Cell<Option<Box<SnapshotIds>>> = const { Cell::new(None) };
}

/// Runs `f` on this thread's table, made on first use. `f` must not run
/// user code (nothing else may use the table meanwhile). After the
/// thread's thread-locals are gone (a report from another thread-local's
/// destructor), `f` gets a table of its own, dropped after it.
fn with_table<R>(_heap: &Heap, f: impl FnOnce(&mut SnapshotIds) -> R) -> R {
    let mut table = TABLE
        .try_with(Cell::take)
        .ok()
        .flatten()
        .unwrap_or_default();
    let result = f(&mut table);
    let _ = TABLE.try_with(|t| t.set(Some(table)));
    result
}

/// Gives every live object of `heap` (strong count above 0) an id if it has
/// none, and forgets the ids of objects no longer allocated. Returns the
/// addresses and ids of the live objects, in address order (the order of a
/// [`HeapGraph`](super::HeapGraph)'s nodes). Runs no user code.
pub(crate) fn refresh(heap: &Heap) -> BigVec<(usize, u32)> {
    with_table(heap, |table| {
        let old = std::mem::take(&mut table.sorted);
        let recent = std::mem::take(&mut table.recent);
        let mut sorted = BigVec::with_capacity(heap.live_objects());
        let mut live = BigVec::with_capacity(heap.live_objects());
        // The cursor of the merge: `old` is ascending, and so is the walk.
        let mut j = 0;
        let each = |header: NonNull<Header>| {
            // SAFETY: an allocated object (no user code runs in the walk),
            // so readable.
            let h = unsafe { header.as_ref() };
            let strong = h.strong() > 0;
            // An object whose value is being dropped, or is gone with
            // handles left, keeps its entry if it has one (see the
            // invariant); it gets none.
            if !strong && !h.has(HAS_ID) {
                return;
            }
            let addr = header.as_ptr() as usize;
            let mut id = None;
            if h.has(HAS_ID) {
                if !recent.is_empty() {
                    id = recent.get(&addr).copied();
                }
                if id.is_none() {
                    while j < old.len() && old[j].0 < addr {
                        j += 1;
                    }
                    if j < old.len() && old[j].0 == addr {
                        id = Some(old[j].1);
                    }
                }
            }
            let id = id.unwrap_or_else(|| {
                // New (or a lost table, see `id_of`).
                h.set(HAS_ID);
                table.fresh()
            });
            sorted.push((addr, id));
            if strong {
                live.push((addr, id));
            }
        };
        // SAFETY: `each` allocates and frees no object (no user code).
        unsafe { heap.for_each_object_by_address(each) };
        table.sorted = sorted;
        live
    })
}

/// The id of the object at `header`, given now if it has none. Runs no user
/// code.
///
/// # Safety
/// `header` is an allocated object of `heap`.
pub(crate) unsafe fn id_of(heap: &Heap, header: NonNull<Header>) -> u32 {
    // SAFETY: forwarded from the caller.
    with_table(heap, |table| unsafe { table.id_of(header) })
}

/// The id the object at `header` had at the last [`refresh`] or [`id_of`],
/// or `None` if it has none (it was made since). Runs no user code.
///
/// # Safety
/// `header` is an allocated object of `heap`.
pub(crate) unsafe fn existing_id(heap: &Heap, header: NonNull<Header>) -> Option<u32> {
    // SAFETY: allocated (the caller's guarantee), so readable.
    if !unsafe { header.as_ref() }.has(HAS_ID) {
        return None;
    }
    let addr = header.as_ptr() as usize;
    with_table(heap, |table| table.lookup(addr))
}

/// Ids that are never given to an object, for nodes whose object could not
/// be named (see [`HeapGraph`](super::HeapGraph)'s export).
pub(crate) fn unmatched_ids(heap: &Heap, count: usize) -> Vec<u32> {
    with_table(heap, |table| (0..count).map(|_| table.fresh()).collect())
}

/// What a [`HeapGraph`](super::HeapGraph) records of its heap when captured:
/// while the same heap has freed nothing since, every object of the graph
/// is still the object at its address.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct HeapStamp {
    heap: usize,
    frees: u64,
    live: usize,
}

impl HeapStamp {
    /// `heap`'s stamp now.
    pub(crate) fn of(heap: &Heap) -> HeapStamp {
        HeapStamp {
            heap: heap as *const Heap as usize,
            frees: heap.frees(),
            live: heap.live_objects(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_are_odd_distinct_and_skip_the_synthetic_ones() {
        let mut table = SnapshotIds::default();
        let ids: Vec<u32> = (0..3000).map(|_| table.fresh()).collect();
        assert!(ids.iter().all(|&id| id % 2 == 1 && id > HELD_OUTSIDE_ID));
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), 3000);
        // Within a block, consecutive.
        assert_eq!(ids[1], ids[0] + 2);

        // A block that wraps around 2^32 skips 1 and 3.
        let mut wrapping = SnapshotIds {
            next: u32::MAX - 2,
            end: 7,
            ..SnapshotIds::default()
        };
        let ids: Vec<u32> = (0..3).map(|_| wrapping.fresh()).collect();
        assert_eq!(ids, [u32::MAX - 2, u32::MAX, 5]);
    }
}
