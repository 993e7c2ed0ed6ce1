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
//! Invariant: every allocated object whose header has `HAS_ID` set has an
//! entry at its address in its heap's table, holding its id. (The flag is set
//! only together with the entry; an entry goes only in [`refresh`], which
//! keeps those of every flagged object still allocated.) Entries of freed
//! objects may linger until the next `refresh`; they are never read, since
//! only flagged objects are looked up.
//!
//! Ids are 32-bit, as DevTools stores them: after about 2.1 billion objects
//! have been given one in a process, numbering starts again from 5.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};

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
pub(crate) struct SnapshotIds {
    /// Address → (id, the last `refresh` that found the object).
    map: AddrMap<(u32, u32)>,
    /// Counts calls to `refresh`.
    epoch: u32,
    /// The heap's current block of ids: `next..end`, by steps of 2.
    next: u32,
    end: u32,
}

impl SnapshotIds {
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
            if let Some(entry) = self.map.get_mut(&addr) {
                entry.1 = self.epoch;
                return entry.0;
            }
            // Not reached (see the invariant); a lost table (a panic while
            // it was taken out) is repaired by giving a new id.
        }
        let id = self.fresh();
        self.map.insert(addr, (id, self.epoch));
        h.set(HAS_ID);
        id
    }
}

/// Runs `f` on `heap`'s table, made on first use. `f` must not run user
/// code (nothing else may use the table meanwhile).
fn with_table<R>(heap: &Heap, f: impl FnOnce(&mut SnapshotIds) -> R) -> R {
    let mut table = heap.snapshot_ids.take().unwrap_or_default();
    let result = f(&mut table);
    heap.snapshot_ids.set(Some(table));
    result
}

/// Gives every live object of `heap` (strong count above 0) an id if it has
/// none, and forgets the ids of objects no longer allocated. Returns the
/// addresses and ids of the live objects, in the order of
/// [`Heap::all_objects`]. Runs no user code.
pub(crate) fn refresh(heap: &Heap) -> Vec<(usize, u32)> {
    let objects = heap.all_objects();
    with_table(heap, |table| {
        table.epoch = table.epoch.wrapping_add(1);
        table
            .map
            .reserve(objects.len().saturating_sub(table.map.len()));
        let mut live = Vec::with_capacity(objects.len());
        for &header in &objects {
            // SAFETY: listed just now, and no object was freed since (no
            // user code ran): allocated, so readable.
            let h = unsafe { header.as_ref() };
            if h.strong.get() > 0 {
                // SAFETY: allocated (above), an object of `heap`.
                let id = unsafe { table.id_of(header) };
                live.push((header.as_ptr() as usize, id));
            } else if h.has(HAS_ID) {
                // Its value is being dropped, or is gone with handles left:
                // keep its entry (see the invariant).
                // SAFETY: as above.
                unsafe { table.id_of(header) };
            }
        }
        let epoch = table.epoch;
        table.map.retain(|_, entry| entry.1 == epoch);
        if table.map.capacity() > 4 * table.map.len().max(1024) {
            table.map.shrink_to_fit();
        }
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
    with_table(heap, |table| table.map.get(&addr).map(|entry| entry.0))
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
