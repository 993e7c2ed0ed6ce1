//! [`WeakSet`]: a set of objects held weakly, by identity (Python's
//! `weakref.WeakSet`).

use std::collections::hash_map::Entry as TableEntry;
use std::fmt;

use super::{is_live, table_size, IdentityTable, ObjectAddress, PurgeSchedule};
use crate::gc::Gc;
use crate::trace::{Trace, Tracer};
use crate::weak::WeakGc;

/// A set of objects, held weakly and compared by identity, like Python's
/// `weakref.WeakSet`: an object leaves the set when it is freed.
///
/// Use it for a registry that must not keep its members alive: the
/// listeners to notify, the open documents, every instance of a type.
///
/// ```
/// use rcycle::{Gc, WeakSet};
///
/// #[derive(rcycle::Trace)]
/// struct Listener { name: &'static str }
///
/// let mut listeners: WeakSet<Listener> = WeakSet::new();
/// let log = Gc::new(Listener { name: "log" });
/// let ui = Gc::new(Listener { name: "ui" });
/// listeners.insert(&log);
/// listeners.insert(&ui);
/// drop(ui); // unsubscribes
/// let names: Vec<&str> = listeners.iter().map(|l| l.name).collect();
/// assert_eq!(names, ["log"]);
/// ```
///
/// # Identity
///
/// Members are compared as [`Gc::ptr_eq`] compares handles: the same object,
/// not an equal value. The set stores each member's address (as
/// [`Gc::as_ptr`] gives it) next to a [`WeakGc`] to it, and lookups go by
/// that address. The address is a sound identity while the member's entry
/// exists. Two objects whose memory is allocated at the same time have
/// different addresses (a value lies inside its own object's memory), and
/// the `WeakGc` holds a weak count, which keeps the object's memory
/// allocated even after its value is dropped: no other object can be made at
/// that address, so a `Gc` with the same address is a handle to the same
/// object. The address and the `WeakGc` are dropped together, with the
/// entry. The set uses no `unsafe` code: the address is only a number, never
/// turned back into a pointer.
///
/// # Dead entries
///
/// An entry is dead once [`WeakGc::upgrade`] of its object returns `None`:
/// the last `Gc` went, the object was a member of a collected garbage cycle,
/// or it is a dead box. Dead entries are never shown (`contains`, `len`,
/// `iter` and `Debug` skip them) and are dropped lazily, since rcycle has no
/// callback of Python's kind to remove them at once: an
/// [`insert`](Self::insert) first drops every dead entry once the inserts
/// since the last such purge outnumber the entries that purge kept (so each
/// insert is amortized O(1), and the table holds at most twice the entries
/// the last purge kept, plus one); [`retain`](Self::retain) and
/// [`remove_dead`](Self::remove_dead) drop them all. Until then a dead entry
/// keeps its object's memory (not its value) allocated, as any `WeakGc`
/// does. [`len`](Self::len) and [`is_empty`](Self::is_empty) look at every
/// entry: O(n).
///
/// # In a `Gc` object
///
/// The set implements [`Trace`], so it can be a field of a `Gc` object. It
/// owns no edge: its members are held weakly.
///
/// [`Gc::ptr_eq`]: crate::Gc::ptr_eq
/// [`Gc::as_ptr`]: crate::Gc::as_ptr
pub struct WeakSet<T: ?Sized> {
    members: IdentityTable<WeakGc<T>>,
    schedule: PurgeSchedule,
}

impl<T: ?Sized> WeakSet<T> {
    /// An empty set. Allocates nothing.
    ///
    /// ```
    /// let set: rcycle::WeakSet<String> = rcycle::WeakSet::new();
    /// assert!(set.is_empty());
    /// ```
    pub fn new() -> Self {
        WeakSet {
            members: IdentityTable::default(),
            schedule: PurgeSchedule::default(),
        }
    }

    /// Adds `object` to the set, held weakly. Returns whether it was not a
    /// member yet.
    ///
    /// If `object` is not live (a dead box, or an object being collected:
    /// [`WeakGc::upgrade`] would return `None`), nothing is added (its dead
    /// entry, if any, is removed) and `false` is returned.
    ///
    /// May first drop every dead entry (amortized O(1): see
    /// [dead entries](WeakSet#dead-entries)).
    ///
    /// ```
    /// use rcycle::{Gc, WeakSet};
    /// let a = Gc::new(1);
    /// let mut set = WeakSet::new();
    /// assert!(set.insert(&a));
    /// assert!(!set.insert(&a.clone())); // the same object
    /// assert!(set.insert(&Gc::new(1))); // an equal value, another object
    /// ```
    pub fn insert(&mut self, object: &Gc<T>) -> bool {
        let weak = Gc::downgrade(object);
        let address = ObjectAddress::of(object);
        if !is_live(&weak) {
            // An entry at this address is this object's, and as dead.
            self.members.remove(&address);
            return false;
        }
        if self.schedule.purge_due() {
            self.remove_dead();
        }
        self.schedule.count_insert();
        match self.members.entry(address) {
            // The entry's `WeakGc` kept the address: it is this object's,
            // and live as the object is.
            TableEntry::Occupied(_) => false,
            TableEntry::Vacant(slot) => {
                slot.insert(weak);
                true
            }
        }
    }

    /// Whether `object` is a member (and live).
    ///
    /// ```
    /// use rcycle::{Gc, WeakSet};
    /// let a = Gc::new(1);
    /// let mut set = WeakSet::new();
    /// set.insert(&a);
    /// assert!(set.contains(&a) && !set.contains(&Gc::new(1)));
    /// ```
    pub fn contains(&self, object: &Gc<T>) -> bool {
        self.members
            .get(&ObjectAddress::of(object))
            .is_some_and(is_live)
    }

    /// Removes `object` from the set. Returns whether it was a live member.
    ///
    /// ```
    /// use rcycle::{Gc, WeakSet};
    /// let a = Gc::new(1);
    /// let mut set = WeakSet::new();
    /// set.insert(&a);
    /// assert!(set.remove(&a));
    /// assert!(!set.remove(&a));
    /// ```
    pub fn remove(&mut self, object: &Gc<T>) -> bool {
        self.members
            .remove(&ObjectAddress::of(object))
            .is_some_and(|weak| is_live(&weak))
    }

    /// The number of live members. O(n): each object is looked at.
    ///
    /// ```
    /// use rcycle::{Gc, WeakSet};
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let mut set = WeakSet::new();
    /// set.insert(&a);
    /// set.insert(&b);
    /// drop(a);
    /// assert_eq!(set.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.members.values().filter(|w| is_live(w)).count()
    }

    /// Whether the set has no live member. O(n) when every entry is dead.
    ///
    /// ```
    /// use rcycle::{Gc, WeakSet};
    /// let a = Gc::new(1);
    /// let mut set = WeakSet::new();
    /// set.insert(&a);
    /// assert!(!set.is_empty());
    /// drop(a);
    /// assert!(set.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        !self.members.values().any(is_live)
    }

    /// The live members, in no particular order, each as a new strong
    /// handle.
    ///
    /// ```
    /// use rcycle::{Gc, WeakSet};
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let mut set = WeakSet::new();
    /// set.insert(&a);
    /// set.insert(&b);
    /// drop(b);
    /// let members: Vec<Gc<i32>> = set.iter().collect();
    /// assert!(members.len() == 1 && Gc::ptr_eq(&members[0], &a));
    /// ```
    pub fn iter(&self) -> WeakSetIter<'_, T> {
        WeakSetIter {
            members: self.members.values(),
        }
    }

    /// Keeps only the live members for which `keep` returns `true`, and
    /// drops every dead entry.
    ///
    /// ```
    /// use rcycle::{Gc, WeakSet};
    /// let objects: Vec<Gc<u32>> = (0..6).map(Gc::new).collect();
    /// let mut set: WeakSet<u32> = objects.iter().collect();
    /// set.retain(|g| **g >= 4);
    /// let mut kept: Vec<u32> = set.iter().map(|g| *g).collect();
    /// kept.sort();
    /// assert_eq!(kept, [4, 5]);
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(&Gc<T>) -> bool) {
        self.members
            .retain(|_, weak| weak.upgrade().is_some_and(|g| keep(&g)));
        self.schedule.purged(self.members.len());
    }

    /// Drops every dead entry now, rather than at some later `insert` (each
    /// keeps its object's memory allocated until then).
    ///
    /// ```
    /// use rcycle::{object_count, Gc, WeakSet};
    /// let before = object_count();
    /// let a = Gc::new(1);
    /// let mut set = WeakSet::new();
    /// set.insert(&a);
    /// drop(a);
    /// assert_eq!(object_count(), before + 1); // the value is gone, the memory is not
    /// set.remove_dead();
    /// assert_eq!(object_count(), before);
    /// ```
    pub fn remove_dead(&mut self) {
        self.members.retain(|_, weak| is_live(weak));
        self.schedule.purged(self.members.len());
    }

    /// Removes every member.
    ///
    /// ```
    /// use rcycle::{Gc, WeakSet};
    /// let a = Gc::new(1);
    /// let mut set = WeakSet::new();
    /// set.insert(&a);
    /// set.clear();
    /// assert!(!set.contains(&a));
    /// ```
    pub fn clear(&mut self) {
        self.members.clear();
        self.schedule.purged(0);
    }
}

impl<T: ?Sized> Default for WeakSet<T> {
    /// Same as [`WeakSet::new`].
    ///
    /// ```
    /// let set: rcycle::WeakSet<u8> = Default::default();
    /// assert!(set.is_empty());
    /// ```
    fn default() -> Self {
        WeakSet::new()
    }
}

/// The live members' values, as `{a, b}`.
///
/// ```
/// use rcycle::{Gc, WeakSet};
/// let (a, b) = (Gc::new("x"), Gc::new("y"));
/// let mut set = WeakSet::new();
/// set.insert(&a);
/// set.insert(&b);
/// drop(b);
/// assert_eq!(format!("{set:?}"), r#"{"x"}"#);
/// ```
impl<T: ?Sized + fmt::Debug> fmt::Debug for WeakSet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<T: ?Sized> Extend<Gc<T>> for WeakSet<T> {
    /// Adds each object; the handles are dropped afterwards, so an object
    /// held by nothing else is dead at once.
    ///
    /// ```
    /// use rcycle::{Gc, WeakSet};
    /// let a = Gc::new(1);
    /// let mut set = WeakSet::new();
    /// set.extend([a.clone(), Gc::new(2)]);
    /// assert_eq!(set.len(), 1); // nothing else holds the `2`
    /// ```
    fn extend<I: IntoIterator<Item = Gc<T>>>(&mut self, objects: I) {
        for object in objects {
            self.insert(&object);
        }
    }
}

impl<'a, T: ?Sized + 'a> Extend<&'a Gc<T>> for WeakSet<T> {
    /// Adds each object.
    ///
    /// ```
    /// use rcycle::{Gc, WeakSet};
    /// let objects = [Gc::new(1), Gc::new(2)];
    /// let mut set = WeakSet::new();
    /// set.extend(&objects);
    /// assert_eq!(set.len(), 2);
    /// ```
    fn extend<I: IntoIterator<Item = &'a Gc<T>>>(&mut self, objects: I) {
        for object in objects {
            self.insert(object);
        }
    }
}

impl<T: ?Sized> FromIterator<Gc<T>> for WeakSet<T> {
    /// A set of the objects (see [`extend`](Self::extend)).
    ///
    /// ```
    /// use rcycle::{Gc, WeakSet};
    /// let objects = [Gc::new(1), Gc::new(2)];
    /// let set: WeakSet<i32> = objects.iter().cloned().collect();
    /// assert_eq!(set.len(), 2);
    /// ```
    fn from_iter<I: IntoIterator<Item = Gc<T>>>(objects: I) -> Self {
        let mut set = WeakSet::new();
        set.extend(objects);
        set
    }
}

impl<'a, T: ?Sized + 'a> FromIterator<&'a Gc<T>> for WeakSet<T> {
    /// A set of the objects.
    ///
    /// ```
    /// use rcycle::{Gc, WeakSet};
    /// let objects = [Gc::new(1), Gc::new(2)];
    /// let set: WeakSet<i32> = objects.iter().collect();
    /// assert!(set.contains(&objects[1]));
    /// ```
    fn from_iter<I: IntoIterator<Item = &'a Gc<T>>>(objects: I) -> Self {
        let mut set = WeakSet::new();
        set.extend(objects);
        set
    }
}

/// The live members of a [`WeakSet`], each as a new strong handle: made by
/// [`WeakSet::iter`] or by iterating over `&WeakSet`. Dead entries are
/// skipped as they are met.
pub struct WeakSetIter<'a, T: ?Sized> {
    members: std::collections::hash_map::Values<'a, ObjectAddress, WeakGc<T>>,
}

impl<T: ?Sized> Iterator for WeakSetIter<'_, T> {
    type Item = Gc<T>;

    fn next(&mut self) -> Option<Gc<T>> {
        self.members.by_ref().find_map(WeakGc::upgrade)
    }

    /// At most the entries not yet looked at.
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.members.size_hint().1)
    }
}

impl<T: ?Sized> std::iter::FusedIterator for WeakSetIter<'_, T> {}

impl<T: ?Sized> Clone for WeakSetIter<'_, T> {
    fn clone(&self) -> Self {
        WeakSetIter {
            members: self.members.clone(),
        }
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for WeakSetIter<'_, T> {
    /// The live members still to come.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.clone()).finish()
    }
}

impl<'a, T: ?Sized> IntoIterator for &'a WeakSet<T> {
    type Item = Gc<T>;
    type IntoIter = WeakSetIter<'a, T>;

    /// As [`WeakSet::iter`].
    ///
    /// ```
    /// use rcycle::{Gc, WeakSet};
    /// let a = Gc::new(1);
    /// let mut set = WeakSet::new();
    /// set.insert(&a);
    /// let total: i32 = (&set).into_iter().map(|g| *g).sum();
    /// assert_eq!(total, 1);
    /// ```
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

// SAFETY: the set owns no `Gc` (its members are weak handles, which are not
// edges): reporting nothing is exact.
unsafe impl<T: ?Sized> Trace for WeakSet<T> {
    #[inline(always)]
    fn trace(&self, _: &mut Tracer<'_>) {}
    fn may_contain_gc() -> bool {
        false
    }
    /// The table.
    fn heap_size(&self) -> usize {
        table_size::<(ObjectAddress, WeakGc<T>)>(self.members.capacity())
    }
    fn __inert_heap_size(&self, _: u32) -> Option<usize> {
        Some(self.heap_size())
    }
    #[inline(always)]
    fn __owns_no_gc(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::INERT_DEPTH;

    #[test]
    fn heap_size_is_the_table() {
        let a = Gc::new(1u8);
        let mut set = WeakSet::new();
        assert_eq!(set.heap_size(), 0);
        set.insert(&a);
        let table = table_size::<(ObjectAddress, WeakGc<u8>)>(set.members.capacity());
        assert!(table > 0);
        assert_eq!(set.heap_size(), table);
        assert_eq!(set.__inert_heap_size(INERT_DEPTH), Some(table));
        assert!(!<WeakSet<u8> as Trace>::may_contain_gc());
        assert!(set.__owns_no_gc());
    }
}
