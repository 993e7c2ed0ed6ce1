//! Weak containers: [`WeakValueMap`], [`WeakKeyMap`] and [`WeakSet`], the
//! equivalents of Python's `weakref.WeakValueDictionary`,
//! `weakref.WeakKeyDictionary` and `weakref.WeakSet`.
//!
//! They are the standard fix for a cache or a registry that keeps everything
//! alive. A `HashMap<u64, Gc<Request>>` that remembers every request by id
//! holds a strong handle to each one: nothing it ever saw is freed, and the
//! leak reporter shows the map as the holder ("ballooning": reachable, but
//! unwanted). Make the map hold its objects weakly and each entry vanishes
//! when the rest of the program lets go of its object:
//!
//! ```
//! use rcycle::{Gc, WeakValueMap};
//!
//! #[derive(rcycle::Trace)]
//! struct Request { id: u64 }
//!
//! let mut by_id: WeakValueMap<u64, Request> = WeakValueMap::new();
//! let request = Gc::new(Request { id: 7 });
//! by_id.insert(request.id, &request);
//! assert!(Gc::ptr_eq(&by_id.get(&7).unwrap(), &request));
//! drop(request); // the cache does not keep it alive
//! assert!(by_id.get(&7).is_none());
//! assert_eq!(by_id.len(), 0);
//! ```
//!
//! | rcycle            | Python                          | holds weakly     | use it for |
//! |-------------------|---------------------------------|------------------|------------|
//! | [`WeakValueMap`]  | `weakref.WeakValueDictionary`   | the values       | a cache or an index by id |
//! | [`WeakKeyMap`]    | `weakref.WeakKeyDictionary`     | the keys         | data attached to objects you do not own |
//! | [`WeakSet`]       | `weakref.WeakSet`               | the elements     | a registry of listeners or instances |
//!
//! [`WeakKeyMap`] and [`WeakSet`] compare their objects by identity (the same
//! object, as [`Gc::ptr_eq`]), like Python's containers for objects without
//! `__eq__`; [`WeakValueMap`] has ordinary keys (`Hash + Eq`).
//!
//! # When an entry vanishes
//!
//! An entry is *dead* once its object's value can no longer be reached:
//! [`WeakGc::upgrade`] returns `None` (the last `Gc` went, the object was a
//! member of a collected garbage cycle, or it is a dead box). Dead entries
//! are never shown: `get`, `contains`, `len`, `iter` and `Debug` skip them.
//! Python removes an entry at once, from a callback of the object's weak
//! reference; rcycle has no such callback, so the containers drop their dead
//! entries lazily, in their `&mut self` methods:
//!
//! * an `insert` first drops every dead entry once the inserts since the
//!   last such purge outnumber the entries that purge kept. A purge walks at
//!   most twice as many entries as there were inserts since the previous
//!   one, so each `insert` costs amortized O(1), and the table never holds
//!   more than twice the entries the last purge kept, plus one;
//! * `retain` and `remove_dead` drop every dead entry, `clear` every entry.
//!
//! Until its entry is dropped, a dead entry still owns its key
//! ([`WeakValueMap`]) or its value ([`WeakKeyMap`]), and keeps its object's
//! memory (not its value) allocated, as any [`WeakGc`] does. Call
//! `remove_dead` to free them at a point of your choosing.
//!
//! `len` and `is_empty` count live entries by looking at each one: O(n),
//! not O(1) as for a `HashMap`.
//!
//! # In a `Gc` object
//!
//! Each container implements [`Trace`](crate::Trace), so it can be a field of
//! a `Gc` object. The weak handles are not edges (they keep nothing alive);
//! the `Gc`s inside a [`WeakValueMap`]'s keys and a [`WeakKeyMap`]'s values
//! are, labelled by their key as in a `HashMap` (a [`WeakKeyMap`]'s key is
//! shown as the address [`Gc::as_ptr`] gives, the way `{:p}` prints a `Gc`).
//! Dead entries' keys and values are reported too: they are owned until the
//! entry is dropped.
//!
//! # Finalizers and resurrection
//!
//! While the finalizers of a garbage cycle run, the cycle's objects do not
//! upgrade, so their entries look dead. A finalizer that resurrects them
//! makes them live again: an entry dropped meanwhile (by a purge in an
//! `insert` the finalizer made) is gone for good, one still there shows
//! again.
//!
//! [`Gc::ptr_eq`]: crate::Gc::ptr_eq
//! [`Gc::as_ptr`]: crate::Gc::as_ptr
//! [`WeakGc`]: crate::WeakGc
//! [`WeakGc::upgrade`]: crate::WeakGc::upgrade

mod weak_key_map;
mod weak_set;
mod weak_value_map;

pub use weak_key_map::{WeakKeyMap, WeakKeyMapIter};
pub use weak_set::{WeakSet, WeakSetIter};
pub use weak_value_map::{WeakValueMap, WeakValueMapIter};

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasherDefault;

use crate::addr_map::AddrHasher;
use crate::gc::Gc;
use crate::weak::WeakGc;

/// Whether `weak`'s object is live: the test [`WeakGc::upgrade`] makes,
/// without making a handle (a `Gc` dropped again would buffer its object as
/// a cycle candidate, for nothing).
#[inline]
fn is_live<T: ?Sized>(weak: &WeakGc<T>) -> bool {
    weak.strong_count() > 0
}

/// The identity of an object: the address of its value, as [`Gc::as_ptr`]
/// gives it. The key of [`WeakKeyMap`] and [`WeakSet`].
///
/// Two objects whose memory is allocated at the same time have different
/// addresses: a value lies inside its object's memory, after the object's
/// header. An address is therefore the identity of one object as long as
/// that object's memory stays allocated, which every entry ensures by
/// holding a [`WeakGc`] to it (a weak count keeps the memory, though not the
/// value; see the containers' docs). Only the number is kept: it is never
/// turned back into a pointer.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct ObjectAddress(usize);

impl ObjectAddress {
    fn of<T: ?Sized>(object: &Gc<T>) -> ObjectAddress {
        ObjectAddress(Gc::as_ptr(object).cast::<()>().addr())
    }
}

/// Printed as `{:p}` prints the `Gc` (the label of a [`WeakKeyMap`] value in
/// reports).
impl fmt::Debug for ObjectAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A table keyed by object identity (addresses hash with one multiply).
type IdentityTable<E> = HashMap<ObjectAddress, E, BuildHasherDefault<AddrHasher>>;

/// When a container drops its dead entries: at an insert, once the inserts
/// since the last purge outnumber the entries that purge kept (see the
/// module docs for why that makes each insert amortized O(1)).
#[derive(Clone, Copy, Default)]
struct PurgeSchedule {
    /// Inserts since the last purge.
    inserts: usize,
    /// Entries the last purge kept.
    kept: usize,
}

impl PurgeSchedule {
    /// Whether the insert about to be made should purge first.
    fn purge_due(&self) -> bool {
        self.inserts > self.kept
    }

    fn count_insert(&mut self) {
        self.inserts += 1;
    }

    /// A purge (or a `retain`, or a `clear`) left `kept` entries.
    fn purged(&mut self, kept: usize) {
        *self = PurgeSchedule { inserts: 0, kept };
    }
}

/// The memory of a hash table of `capacity` entries of type `E`: a slot and
/// a control byte per bucket (the estimate `HashMap`'s `heap_size` uses).
fn table_size<E>(capacity: usize) -> usize {
    capacity * (size_of::<E>() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purges_come_at_doubling_sizes() {
        // Inserting live entries one by one into a fresh container: the
        // inserts that purge first are the 2nd, 4th, 8th, 16th, ...
        let mut schedule = PurgeSchedule::default();
        let mut purged_at = Vec::new();
        for n in 1..=40 {
            if schedule.purge_due() {
                purged_at.push(n);
                schedule.purged(n - 1); // all `n - 1` entries live
            }
            schedule.count_insert();
        }
        assert_eq!(purged_at, [2, 4, 8, 16, 32]);
    }

    #[test]
    fn object_address_prints_like_a_gc_pointer() {
        let g = Gc::new(3u8);
        assert_eq!(format!("{:?}", ObjectAddress::of(&g)), format!("{:p}", g));
    }
}
