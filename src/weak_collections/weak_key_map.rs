//! [`WeakKeyMap`]: a map whose keys are objects held weakly, by identity
//! (Python's `weakref.WeakKeyDictionary`).

use std::collections::hash_map::Entry as TableEntry;
use std::fmt;

use super::{is_live, table_size, IdentityTable, ObjectAddress, PurgeSchedule};
use crate::gc::Gc;
use crate::trace::{Trace, Tracer};
use crate::weak::WeakGc;

/// One entry: the key object, held weakly, and its value.
struct Entry<K: ?Sized, V> {
    key: WeakGc<K>,
    value: V,
}

/// A map from objects, held weakly and compared by identity, to values, like
/// Python's `weakref.WeakKeyDictionary`: when a key object is freed, its
/// entry (and its value) goes away.
///
/// Use it to attach data to objects without keeping them alive, and without
/// a field in their type: a side table of per-object state, a memo of what
/// was computed from each object. A `HashMap<*const T, V>` would keep data
/// for freed objects forever (and mix it up with a new object at the same
/// address); a `HashMap` holding `Gc<T>` keys would keep the objects alive.
///
/// ```
/// use rcycle::{Gc, WeakKeyMap};
///
/// #[derive(rcycle::Trace)]
/// struct Window { title: String }
///
/// let mut clicks: WeakKeyMap<Window, u32> = WeakKeyMap::new();
/// let main = Gc::new(Window { title: "main".into() });
/// let about = Gc::new(Window { title: "about".into() });
/// clicks.insert(&main, 0);
/// clicks.insert(&about, 0);
/// *clicks.get_mut(&main).unwrap() += 1;
/// assert_eq!(clicks.get(&main), Some(&1));
/// drop(about); // its entry goes with it
/// assert_eq!(clicks.len(), 1);
/// ```
///
/// # Identity
///
/// Keys are compared as [`Gc::ptr_eq`] compares handles: the same object,
/// not an equal value (like Python's for objects without `__eq__`). Each
/// entry stores its object's address (as [`Gc::as_ptr`] gives it) next to a
/// [`WeakGc`] to it, and lookups go by that address. The address is a sound
/// identity while the entry exists. Two objects whose memory is allocated at
/// the same time have different addresses (a value lies inside its own
/// object's memory), and the `WeakGc` holds a weak count, which keeps the
/// object's memory allocated even after its value is dropped: no other
/// object can be made at that address, so a `Gc` with the same address is a
/// handle to the same object. The address and the `WeakGc` are dropped
/// together, with the entry. The map uses no `unsafe` code: the address is
/// only a number, never turned back into a pointer.
///
/// # Dead entries
///
/// An entry is dead once [`WeakGc::upgrade`] of its key object returns
/// `None`: the last `Gc` went, the object was a member of a collected
/// garbage cycle, or it is a dead box. Dead entries are never shown (`get`,
/// `contains_key`, `len`, `iter` and `Debug` skip them) and are dropped
/// lazily, since rcycle has no callback of Python's kind to remove them at
/// once: an [`insert`](Self::insert) first drops every dead entry once the
/// inserts since the last such purge outnumber the entries that purge kept
/// (so each insert is amortized O(1), and the table holds at most twice the
/// entries the last purge kept, plus one); [`retain`](Self::retain)
/// and [`remove_dead`](Self::remove_dead) drop them all. Until then a dead
/// entry still owns its **value** (and what the value holds), and keeps its
/// key object's memory (not its value) allocated, as any `WeakGc` does. Call
/// `remove_dead` when the values should go now. [`len`](Self::len) and
/// [`is_empty`](Self::is_empty) look at every entry: O(n).
///
/// # In a `Gc` object, and values that refer to their key
///
/// The map implements [`Trace`] (for `V: Trace`), so it can be a field of a
/// `Gc` object: the `Gc`s inside its values are edges, labelled by their key
/// object's address (printed as `{:p}` prints a `Gc`), dead entries' values
/// too (the map owns them); the weak handles to the keys are not edges.
///
/// A value that holds its own key strongly keeps the key alive for as long
/// as the map is alive, exactly as in Python: the map does not know that the
/// value is only reachable through the key (it is not an *ephemeron* table).
/// If the map itself is only reachable from its key objects (stored in a
/// field of the key, say), the whole is an ordinary cycle, which
/// [`collect`](crate::collect()) frees:
///
/// ```
/// use rcycle::{collect, Gc, Trace, WeakKeyMap};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Node { notes: RefCell<WeakKeyMap<Node, Gc<Node>>> }
///
/// let node = Gc::new(Node { notes: RefCell::new(WeakKeyMap::new()) });
/// node.notes.borrow_mut().insert(&node, node.clone()); // node -> map -> value -> node
/// drop(node);
/// assert_eq!(collect(), 1);
///
/// // A map held outside the heap keeps such a key alive:
/// let mut outside: WeakKeyMap<Node, Gc<Node>> = WeakKeyMap::new();
/// let node = Gc::new(Node { notes: RefCell::new(WeakKeyMap::new()) });
/// outside.insert(&node, node.clone());
/// drop(node);
/// assert_eq!(collect(), 0);
/// assert_eq!(outside.len(), 1);
/// ```
///
/// [`Gc::ptr_eq`]: crate::Gc::ptr_eq
/// [`Gc::as_ptr`]: crate::Gc::as_ptr
pub struct WeakKeyMap<K: ?Sized, V> {
    entries: IdentityTable<Entry<K, V>>,
    schedule: PurgeSchedule,
}

impl<K: ?Sized, V> WeakKeyMap<K, V> {
    /// An empty map. Allocates nothing.
    ///
    /// ```
    /// let map: rcycle::WeakKeyMap<String, u32> = rcycle::WeakKeyMap::new();
    /// assert!(map.is_empty());
    /// ```
    pub fn new() -> Self {
        WeakKeyMap {
            entries: IdentityTable::default(),
            schedule: PurgeSchedule::default(),
        }
    }

    /// Maps `key`'s object, held weakly, to `value`, and returns the value
    /// it was mapped to, if any.
    ///
    /// If `key`'s object is not live (a dead box, or an object being
    /// collected: [`WeakGc::upgrade`] would return `None`), nothing is
    /// stored: its entry, if any, is removed, and `value` is dropped.
    ///
    /// May first drop every dead entry (amortized O(1): see
    /// [dead entries](WeakKeyMap#dead-entries)).
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// let a = Gc::new("a");
    /// let mut map = WeakKeyMap::new();
    /// assert_eq!(map.insert(&a, 1), None);
    /// assert_eq!(map.insert(&a, 2), Some(1));
    /// assert_eq!(map.insert(&Gc::new("a"), 3), None); // another object
    /// ```
    pub fn insert(&mut self, key: &Gc<K>, value: V) -> Option<V> {
        let weak = Gc::downgrade(key);
        let address = ObjectAddress::of(key);
        if !is_live(&weak) {
            // An entry at this address is this object's, and as dead.
            self.entries.remove(&address);
            return None;
        }
        if self.schedule.purge_due() {
            self.remove_dead();
        }
        self.schedule.count_insert();
        match self.entries.entry(address) {
            // The entry's `WeakGc` kept the address: it is this object's,
            // and live as the object is.
            TableEntry::Occupied(mut entry) => {
                Some(std::mem::replace(&mut entry.get_mut().value, value))
            }
            TableEntry::Vacant(slot) => {
                slot.insert(Entry { key: weak, value });
                None
            }
        }
    }

    /// The live entry of `key`'s object, if any.
    fn live_entry(&self, key: &Gc<K>) -> Option<&Entry<K, V>> {
        let entry = self.entries.get(&ObjectAddress::of(key))?;
        is_live(&entry.key).then_some(entry)
    }

    /// The value of `key`'s object, if it has a live entry.
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// let a = Gc::new(0u8);
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&a, "first");
    /// assert_eq!(map.get(&a), Some(&"first"));
    /// assert_eq!(map.get(&Gc::new(0u8)), None);
    /// ```
    pub fn get(&self, key: &Gc<K>) -> Option<&V> {
        self.live_entry(key).map(|entry| &entry.value)
    }

    /// The value of `key`'s object, mutably, if it has a live entry.
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// let a = Gc::new(0u8);
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&a, vec![1]);
    /// map.get_mut(&a).unwrap().push(2);
    /// assert_eq!(map.get(&a), Some(&vec![1, 2]));
    /// ```
    pub fn get_mut(&mut self, key: &Gc<K>) -> Option<&mut V> {
        let entry = self.entries.get_mut(&ObjectAddress::of(key))?;
        is_live(&entry.key).then_some(&mut entry.value)
    }

    /// Whether `key`'s object has a live entry.
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// let a = Gc::new(0u8);
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&a, ());
    /// assert!(map.contains_key(&a) && !map.contains_key(&Gc::new(0u8)));
    /// ```
    pub fn contains_key(&self, key: &Gc<K>) -> bool {
        self.live_entry(key).is_some()
    }

    /// Removes the entry of `key`'s object and returns its value if the
    /// entry was live (a dead entry's value is dropped).
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// let a = Gc::new(0u8);
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&a, 7);
    /// assert_eq!(map.remove(&a), Some(7));
    /// assert_eq!(map.remove(&a), None);
    /// ```
    pub fn remove(&mut self, key: &Gc<K>) -> Option<V> {
        let entry = self.entries.remove(&ObjectAddress::of(key))?;
        is_live(&entry.key).then_some(entry.value)
    }

    /// The number of live entries. O(n): each key object is looked at.
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&a, ());
    /// map.insert(&b, ());
    /// drop(a);
    /// assert_eq!(map.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.values().filter(|e| is_live(&e.key)).count()
    }

    /// Whether the map has no live entry. O(n) when every entry is dead.
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// let a = Gc::new(1);
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&a, ());
    /// assert!(!map.is_empty());
    /// drop(a);
    /// assert!(map.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        !self.entries.values().any(|e| is_live(&e.key))
    }

    /// The live entries, in no particular order, each with a new strong
    /// handle to its key object.
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// let (a, b) = (Gc::new("a"), Gc::new("b"));
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&a, 1);
    /// map.insert(&b, 2);
    /// drop(a);
    /// let entries: Vec<(&str, i32)> = map.iter().map(|(k, v)| (*k, *v)).collect();
    /// assert_eq!(entries, [("b", 2)]);
    /// ```
    pub fn iter(&self) -> WeakKeyMapIter<'_, K, V> {
        WeakKeyMapIter {
            entries: self.entries.values(),
        }
    }

    /// Keeps only the live entries for which `keep` returns `true`, and
    /// drops every dead entry (with its value).
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// let objects: Vec<Gc<u32>> = (0..4).map(Gc::new).collect();
    /// let mut map: WeakKeyMap<u32, u32> = objects.iter().map(|g| (g, **g * 10)).collect();
    /// map.retain(|_, v| {
    ///     *v += 1;
    ///     *v > 15
    /// });
    /// let mut values: Vec<u32> = map.iter().map(|(_, v)| *v).collect();
    /// values.sort();
    /// assert_eq!(values, [21, 31]);
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(&Gc<K>, &mut V) -> bool) {
        self.entries.retain(|_, e| match e.key.upgrade() {
            Some(key) => keep(&key, &mut e.value),
            None => false,
        });
        self.schedule.purged(self.entries.len());
    }

    /// Drops every dead entry (with its value) now, rather than at some
    /// later `insert`.
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// use std::rc::Rc;
    /// let a = Gc::new(1);
    /// let value = Rc::new(());
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&a, value.clone());
    /// drop(a);
    /// assert_eq!(Rc::strong_count(&value), 2); // the dead entry still owns it
    /// map.remove_dead();
    /// assert_eq!(Rc::strong_count(&value), 1);
    /// ```
    pub fn remove_dead(&mut self) {
        self.entries.retain(|_, e| is_live(&e.key));
        self.schedule.purged(self.entries.len());
    }

    /// Removes every entry.
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// let a = Gc::new(1);
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&a, ());
    /// map.clear();
    /// assert!(!map.contains_key(&a));
    /// ```
    pub fn clear(&mut self) {
        self.entries.clear();
        self.schedule.purged(0);
    }
}

impl<K: ?Sized, V> Default for WeakKeyMap<K, V> {
    /// Same as [`WeakKeyMap::new`].
    ///
    /// ```
    /// let map: rcycle::WeakKeyMap<u8, u8> = Default::default();
    /// assert!(map.is_empty());
    /// ```
    fn default() -> Self {
        WeakKeyMap::new()
    }
}

/// The live entries, as `{key: value}` (the key object's value printed).
///
/// ```
/// use rcycle::{Gc, WeakKeyMap};
/// let (a, b) = (Gc::new("x"), Gc::new("y"));
/// let mut map = WeakKeyMap::new();
/// map.insert(&a, 1);
/// map.insert(&b, 2);
/// drop(b);
/// assert_eq!(format!("{map:?}"), r#"{"x": 1}"#);
/// ```
impl<K: ?Sized + fmt::Debug, V: fmt::Debug> fmt::Debug for WeakKeyMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: ?Sized, V> Extend<(Gc<K>, V)> for WeakKeyMap<K, V> {
    /// Inserts each pair; the handles are dropped afterwards, so an object
    /// held by nothing else is dead at once (and its value dropped).
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// let a = Gc::new(1);
    /// let mut map = WeakKeyMap::new();
    /// map.extend([(a.clone(), "a"), (Gc::new(2), "b")]);
    /// assert_eq!(map.len(), 1); // nothing else holds the `2`
    /// ```
    fn extend<I: IntoIterator<Item = (Gc<K>, V)>>(&mut self, pairs: I) {
        for (k, v) in pairs {
            self.insert(&k, v);
        }
    }
}

impl<'a, K: ?Sized + 'a, V> Extend<(&'a Gc<K>, V)> for WeakKeyMap<K, V> {
    /// Inserts each pair.
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// let objects = [Gc::new(1), Gc::new(2)];
    /// let mut map = WeakKeyMap::new();
    /// map.extend(objects.iter().map(|g| (g, **g + 1)));
    /// assert_eq!(map.get(&objects[1]), Some(&3));
    /// ```
    fn extend<I: IntoIterator<Item = (&'a Gc<K>, V)>>(&mut self, pairs: I) {
        for (k, v) in pairs {
            self.insert(k, v);
        }
    }
}

impl<K: ?Sized, V> FromIterator<(Gc<K>, V)> for WeakKeyMap<K, V> {
    /// A map of the pairs (see [`extend`](Self::extend)).
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// let objects = [Gc::new(1), Gc::new(2)];
    /// let map: WeakKeyMap<i32, &str> = objects.iter().map(|g| (g.clone(), "seen")).collect();
    /// assert_eq!(map.len(), 2);
    /// ```
    fn from_iter<I: IntoIterator<Item = (Gc<K>, V)>>(pairs: I) -> Self {
        let mut map = WeakKeyMap::new();
        map.extend(pairs);
        map
    }
}

impl<'a, K: ?Sized + 'a, V> FromIterator<(&'a Gc<K>, V)> for WeakKeyMap<K, V> {
    /// A map of the pairs.
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// let objects = [Gc::new(1), Gc::new(2)];
    /// let map: WeakKeyMap<i32, &str> = objects.iter().map(|g| (g, "seen")).collect();
    /// assert_eq!(map.get(&objects[0]), Some(&"seen"));
    /// ```
    fn from_iter<I: IntoIterator<Item = (&'a Gc<K>, V)>>(pairs: I) -> Self {
        let mut map = WeakKeyMap::new();
        map.extend(pairs);
        map
    }
}

/// The live entries of a [`WeakKeyMap`], each with a new strong handle to
/// its key object: made by [`WeakKeyMap::iter`] or by iterating over
/// `&WeakKeyMap`. Dead entries are skipped as they are met.
pub struct WeakKeyMapIter<'a, K: ?Sized, V> {
    entries: std::collections::hash_map::Values<'a, ObjectAddress, Entry<K, V>>,
}

impl<'a, K: ?Sized, V> Iterator for WeakKeyMapIter<'a, K, V> {
    type Item = (Gc<K>, &'a V);

    fn next(&mut self) -> Option<Self::Item> {
        self.entries
            .by_ref()
            .find_map(|e| Some((e.key.upgrade()?, &e.value)))
    }

    /// At most the entries not yet looked at.
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.entries.size_hint().1)
    }
}

impl<K: ?Sized, V> std::iter::FusedIterator for WeakKeyMapIter<'_, K, V> {}

impl<K: ?Sized, V> Clone for WeakKeyMapIter<'_, K, V> {
    fn clone(&self) -> Self {
        WeakKeyMapIter {
            entries: self.entries.clone(),
        }
    }
}

impl<K: ?Sized + fmt::Debug, V: fmt::Debug> fmt::Debug for WeakKeyMapIter<'_, K, V> {
    /// The live entries still to come.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.clone()).finish()
    }
}

impl<'a, K: ?Sized, V> IntoIterator for &'a WeakKeyMap<K, V> {
    type Item = (Gc<K>, &'a V);
    type IntoIter = WeakKeyMapIter<'a, K, V>;

    /// As [`WeakKeyMap::iter`].
    ///
    /// ```
    /// use rcycle::{Gc, WeakKeyMap};
    /// let a = Gc::new("a");
    /// let mut map = WeakKeyMap::new();
    /// map.insert(&a, 1);
    /// for (key, value) in &map {
    ///     assert_eq!((*key, *value), ("a", 1));
    /// }
    /// ```
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

// SAFETY: the map owns each value once, and its keys are weak handles, which
// own no edge: each value is traced once, labelled by its key object's
// address, and nothing else is reported. Nothing is mutated (the values'
// own impls mutate nothing, by their contract; the labels are numbers).
// Dead entries' values are reported too: the map owns them until it drops
// the entry.
unsafe impl<K: ?Sized, V: Trace> Trace for WeakKeyMap<K, V> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        if V::may_contain_gc() {
            for (address, entry) in &self.entries {
                tracer.key(address, &entry.value);
            }
        }
    }
    fn may_contain_gc() -> bool {
        V::may_contain_gc()
    }
    /// The table and the values.
    fn heap_size(&self) -> usize {
        let values: usize = self.entries.values().map(|e| e.value.heap_size()).sum();
        table_size::<(ObjectAddress, Entry<K, V>)>(self.entries.capacity()) + values
    }
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        let depth = depth.checked_sub(1)?;
        let mut values = 0usize;
        for entry in self.entries.values() {
            values += entry.value.__inert_heap_size(depth)?;
        }
        Some(table_size::<(ObjectAddress, Entry<K, V>)>(self.entries.capacity()) + values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::INERT_DEPTH;

    #[test]
    fn heap_size_is_the_table_and_the_values() {
        let (a, b) = (Gc::new(1u8), Gc::new(2u8));
        let mut map = WeakKeyMap::new();
        map.insert(&a, String::with_capacity(10));
        map.insert(&b, String::with_capacity(5));
        let table = table_size::<(ObjectAddress, Entry<u8, String>)>(map.entries.capacity());
        assert!(table > 0);
        assert_eq!(map.heap_size(), table + 15);
        assert_eq!(map.__inert_heap_size(INERT_DEPTH), Some(table + 15));
        drop(a); // a dead entry's value is still owned
        assert_eq!(map.heap_size(), table + 15);
        assert!(!<WeakKeyMap<u8, String> as Trace>::may_contain_gc());
        assert!(<WeakKeyMap<u8, Gc<u8>> as Trace>::may_contain_gc());
    }
}
