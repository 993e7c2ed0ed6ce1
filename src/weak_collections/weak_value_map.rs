//! [`WeakValueMap`]: a map whose values are held weakly (Python's
//! `weakref.WeakValueDictionary`).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;

use super::{is_live, PurgeSchedule};
use crate::gc::Gc;
use crate::trace::{Trace, Tracer};
use crate::weak::WeakGc;

/// A map from keys to objects it holds weakly, like Python's
/// `weakref.WeakValueDictionary`: an entry vanishes when its object is freed.
///
/// The fix for a cache or an index that keeps everything alive: a
/// `HashMap<K, Gc<V>>` keeps every object it ever held; a `WeakValueMap<K, V>`
/// finds an object while something else keeps it alive, and forgets it when
/// nothing does. Keys are ordinary keys (`Hash + Eq`), owned by the map.
///
/// ```
/// use rcycle::{collect, Gc, Trace, WeakValueMap};
/// use std::cell::RefCell;
///
/// #[derive(Trace)]
/// struct Session { user: String, peer: RefCell<Option<Gc<Session>>> }
///
/// let mut by_user: WeakValueMap<String, Session> = WeakValueMap::new();
/// let alice = Gc::new(Session { user: "alice".into(), peer: RefCell::new(None) });
/// let bob = Gc::new(Session { user: "bob".into(), peer: RefCell::new(Some(alice.clone())) });
/// *alice.peer.borrow_mut() = Some(bob.clone()); // a cycle
/// by_user.insert(alice.user.clone(), &alice);
/// by_user.insert(bob.user.clone(), &bob);
/// assert_eq!(by_user.get("bob").unwrap().user, "bob"); // `&str` finds a `String` key
///
/// drop((alice, bob));
/// assert_eq!(by_user.len(), 2); // the cycle keeps both alive...
/// assert_eq!(collect(), 2); // ...until it is collected
/// assert!(by_user.is_empty());
/// ```
///
/// # Dead entries
///
/// An entry is dead once [`WeakGc::upgrade`] of its object returns `None`:
/// the last `Gc` went, the object was a member of a collected garbage cycle,
/// or it is a dead box. Dead entries are never shown (`get`, `contains_key`,
/// `len`, `iter` and `Debug` skip them) and are dropped lazily, since rcycle
/// has no callback of Python's kind to remove them at once: an
/// [`insert`](Self::insert) first drops every dead entry once the inserts
/// since the last such purge outnumber the entries that purge kept (so each
/// insert is amortized O(1), and the table holds at most twice the entries
/// the last purge kept, plus one); [`retain`](Self::retain) and
/// [`remove_dead`](Self::remove_dead) drop them all. Until then a dead entry
/// still owns its key, and keeps its object's memory (not its value)
/// allocated, as any `WeakGc` does. [`len`](Self::len) and
/// [`is_empty`](Self::is_empty) look at every entry: O(n).
///
/// # In a `Gc` object
///
/// The map implements [`Trace`] (for `K: Trace + Debug`), so it can be a
/// field of a `Gc` object: the `Gc`s inside its keys are edges, labelled by
/// the key as in a `HashMap` (dead entries' keys too: the map owns them);
/// the weak handles to the values are not.
pub struct WeakValueMap<K, V: ?Sized> {
    map: HashMap<K, WeakGc<V>>,
    schedule: PurgeSchedule,
}

impl<K, V: ?Sized> WeakValueMap<K, V> {
    /// An empty map. Allocates nothing.
    ///
    /// ```
    /// let map: rcycle::WeakValueMap<u32, String> = rcycle::WeakValueMap::new();
    /// assert!(map.is_empty());
    /// ```
    pub fn new() -> Self {
        WeakValueMap {
            map: HashMap::new(),
            schedule: PurgeSchedule::default(),
        }
    }

    /// The number of live entries. O(n): each entry's object is looked at.
    ///
    /// ```
    /// use rcycle::{Gc, WeakValueMap};
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let mut map = WeakValueMap::new();
    /// map.insert("a", &a);
    /// map.insert("b", &b);
    /// assert_eq!(map.len(), 2);
    /// drop(a);
    /// assert_eq!(map.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.map.values().filter(|w| is_live(w)).count()
    }

    /// Whether the map has no live entry. O(n) when every entry is dead.
    ///
    /// ```
    /// use rcycle::{Gc, WeakValueMap};
    /// let a = Gc::new(1);
    /// let mut map = WeakValueMap::new();
    /// map.insert("a", &a);
    /// assert!(!map.is_empty());
    /// drop(a);
    /// assert!(map.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        !self.map.values().any(is_live)
    }

    /// The live entries, in no particular order, each with a new strong
    /// handle to its object.
    ///
    /// ```
    /// use rcycle::{Gc, WeakValueMap};
    /// let (a, b) = (Gc::new(1), Gc::new(2));
    /// let mut map = WeakValueMap::new();
    /// map.insert("a", &a);
    /// map.insert("b", &b);
    /// drop(b);
    /// let entries: Vec<(&str, i32)> = map.iter().map(|(k, v)| (*k, *v)).collect();
    /// assert_eq!(entries, [("a", 1)]);
    /// ```
    pub fn iter(&self) -> WeakValueMapIter<'_, K, V> {
        WeakValueMapIter {
            entries: self.map.iter(),
        }
    }

    /// Keeps only the live entries for which `keep` returns `true`, and
    /// drops every dead entry.
    ///
    /// ```
    /// use rcycle::{Gc, WeakValueMap};
    /// let objects: Vec<Gc<u32>> = (0..6).map(Gc::new).collect();
    /// let mut map: WeakValueMap<u32, u32> = objects.iter().map(|g| (**g, g)).collect();
    /// map.retain(|_, g| **g % 2 == 0);
    /// let mut keys: Vec<u32> = map.iter().map(|(k, _)| *k).collect();
    /// keys.sort();
    /// assert_eq!(keys, [0, 2, 4]);
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(&K, &Gc<V>) -> bool) {
        self.map
            .retain(|k, w| w.upgrade().is_some_and(|g| keep(k, &g)));
        self.schedule.purged(self.map.len());
    }

    /// Drops every dead entry now (with its key), rather than at some later
    /// `insert`.
    ///
    /// ```
    /// use rcycle::{Gc, WeakValueMap};
    /// let a = Gc::new(1);
    /// let mut map = WeakValueMap::new();
    /// map.insert(String::from("a"), &a);
    /// drop(a);
    /// map.remove_dead(); // the key `String` is freed here
    /// assert!(map.is_empty());
    /// ```
    pub fn remove_dead(&mut self) {
        self.map.retain(|_, w| is_live(w));
        self.schedule.purged(self.map.len());
    }

    /// Removes every entry.
    ///
    /// ```
    /// use rcycle::{Gc, WeakValueMap};
    /// let a = Gc::new(1);
    /// let mut map = WeakValueMap::new();
    /// map.insert(1, &a);
    /// map.clear();
    /// assert!(map.get(&1).is_none());
    /// ```
    pub fn clear(&mut self) {
        self.map.clear();
        self.schedule.purged(0);
    }
}

impl<K: Hash + Eq, V: ?Sized> WeakValueMap<K, V> {
    /// Maps `key` to `value`'s object, held weakly, and returns the object
    /// `key` was mapped to if it is live (a new strong handle to it). The key
    /// already in the map stays, as in `HashMap::insert`.
    ///
    /// If `value`'s object is not live (a dead box, or an object being
    /// collected: [`WeakGc::upgrade`] would return `None`), nothing is
    /// stored: the entry of `key`, if any, is removed and `key` is dropped.
    ///
    /// May first drop every dead entry (amortized O(1): see
    /// [dead entries](WeakValueMap#dead-entries)).
    ///
    /// ```
    /// use rcycle::{Gc, WeakValueMap};
    /// let (a, b) = (Gc::new("a"), Gc::new("b"));
    /// let mut map = WeakValueMap::new();
    /// assert!(map.insert(1, &a).is_none());
    /// let previous = map.insert(1, &b).unwrap();
    /// assert!(Gc::ptr_eq(&previous, &a));
    /// ```
    pub fn insert(&mut self, key: K, value: &Gc<V>) -> Option<Gc<V>> {
        let weak = Gc::downgrade(value);
        if !is_live(&weak) {
            return self.map.remove(&key).and_then(|old| old.upgrade());
        }
        if self.schedule.purge_due() {
            self.remove_dead();
        }
        self.schedule.count_insert();
        self.map.insert(key, weak).and_then(|old| old.upgrade())
    }

    /// The object mapped to `key`, if it is live (a new strong handle).
    /// `key` may be any borrowed form of `K`, as in `HashMap::get`.
    ///
    /// ```
    /// use rcycle::{Gc, WeakValueMap};
    /// let a = Gc::new(5);
    /// let mut map = WeakValueMap::new();
    /// map.insert(String::from("five"), &a);
    /// assert_eq!(map.get("five").as_deref(), Some(&5));
    /// drop(a);
    /// assert!(map.get("five").is_none());
    /// ```
    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<Gc<V>>
    where
        K: Borrow<Q>,
    {
        self.map.get(key)?.upgrade()
    }

    /// Whether `key` is mapped to a live object.
    ///
    /// ```
    /// use rcycle::{Gc, WeakValueMap};
    /// let a = Gc::new(5);
    /// let mut map = WeakValueMap::new();
    /// map.insert(1, &a);
    /// assert!(map.contains_key(&1) && !map.contains_key(&2));
    /// drop(a);
    /// assert!(!map.contains_key(&1));
    /// ```
    pub fn contains_key<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
    {
        self.map.get(key).is_some_and(is_live)
    }

    /// Removes the entry of `key`, live or dead, and returns its object if
    /// it is live.
    ///
    /// ```
    /// use rcycle::{Gc, WeakValueMap};
    /// let a = Gc::new(5);
    /// let mut map = WeakValueMap::new();
    /// map.insert(1, &a);
    /// assert!(Gc::ptr_eq(&map.remove(&1).unwrap(), &a));
    /// assert!(map.remove(&1).is_none());
    /// ```
    pub fn remove<Q: Hash + Eq + ?Sized>(&mut self, key: &Q) -> Option<Gc<V>>
    where
        K: Borrow<Q>,
    {
        self.map.remove(key)?.upgrade()
    }
}

impl<K, V: ?Sized> Default for WeakValueMap<K, V> {
    /// Same as [`WeakValueMap::new`].
    ///
    /// ```
    /// let map: rcycle::WeakValueMap<u8, u8> = Default::default();
    /// assert!(map.is_empty());
    /// ```
    fn default() -> Self {
        WeakValueMap::new()
    }
}

/// The live entries, as `{key: value}`.
///
/// ```
/// use rcycle::{Gc, WeakValueMap};
/// let (a, b) = (Gc::new("x"), Gc::new("y"));
/// let mut map = WeakValueMap::new();
/// map.insert(1, &a);
/// map.insert(2, &b);
/// drop(b);
/// assert_eq!(format!("{map:?}"), r#"{1: "x"}"#);
/// ```
impl<K: fmt::Debug, V: ?Sized + fmt::Debug> fmt::Debug for WeakValueMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: Hash + Eq, V: ?Sized> Extend<(K, Gc<V>)> for WeakValueMap<K, V> {
    /// Inserts each pair; the handles are dropped afterwards, so an object
    /// held by nothing else is dead at once.
    ///
    /// ```
    /// use rcycle::{Gc, WeakValueMap};
    /// let a = Gc::new(1);
    /// let mut map = WeakValueMap::new();
    /// map.extend([("a", a.clone()), ("b", Gc::new(2))]);
    /// assert_eq!(map.len(), 1); // nothing else holds the `2`
    /// ```
    fn extend<I: IntoIterator<Item = (K, Gc<V>)>>(&mut self, pairs: I) {
        for (k, v) in pairs {
            self.insert(k, &v);
        }
    }
}

impl<'a, K: Hash + Eq, V: ?Sized + 'a> Extend<(K, &'a Gc<V>)> for WeakValueMap<K, V> {
    /// Inserts each pair.
    ///
    /// ```
    /// use rcycle::{Gc, WeakValueMap};
    /// let objects = [Gc::new(1), Gc::new(2)];
    /// let mut map = WeakValueMap::new();
    /// map.extend(objects.iter().map(|g| (**g, g)));
    /// assert_eq!(map.len(), 2);
    /// ```
    fn extend<I: IntoIterator<Item = (K, &'a Gc<V>)>>(&mut self, pairs: I) {
        for (k, v) in pairs {
            self.insert(k, v);
        }
    }
}

impl<K: Hash + Eq, V: ?Sized> FromIterator<(K, Gc<V>)> for WeakValueMap<K, V> {
    /// A map of the pairs (see [`extend`](Self::extend)).
    ///
    /// ```
    /// use rcycle::{Gc, WeakValueMap};
    /// let objects = [Gc::new(1), Gc::new(2)];
    /// let map: WeakValueMap<i32, i32> = objects.iter().map(|g| (**g, g.clone())).collect();
    /// assert_eq!(map.len(), 2);
    /// ```
    fn from_iter<I: IntoIterator<Item = (K, Gc<V>)>>(pairs: I) -> Self {
        let mut map = WeakValueMap::new();
        map.extend(pairs);
        map
    }
}

impl<'a, K: Hash + Eq, V: ?Sized + 'a> FromIterator<(K, &'a Gc<V>)> for WeakValueMap<K, V> {
    /// A map of the pairs.
    ///
    /// ```
    /// use rcycle::{Gc, WeakValueMap};
    /// let objects = [Gc::new(1), Gc::new(2)];
    /// let map: WeakValueMap<i32, i32> = objects.iter().map(|g| (**g, g)).collect();
    /// assert_eq!(map.get(&2).as_deref(), Some(&2));
    /// ```
    fn from_iter<I: IntoIterator<Item = (K, &'a Gc<V>)>>(pairs: I) -> Self {
        let mut map = WeakValueMap::new();
        map.extend(pairs);
        map
    }
}

/// The live entries of a [`WeakValueMap`], each with a new strong handle to
/// its object: made by [`WeakValueMap::iter`] or by iterating over
/// `&WeakValueMap`. Dead entries are skipped as they are met, so an entry
/// whose object goes while the iteration runs is not returned after that.
pub struct WeakValueMapIter<'a, K, V: ?Sized> {
    entries: std::collections::hash_map::Iter<'a, K, WeakGc<V>>,
}

impl<'a, K, V: ?Sized> Iterator for WeakValueMapIter<'a, K, V> {
    type Item = (&'a K, Gc<V>);

    fn next(&mut self) -> Option<Self::Item> {
        self.entries
            .by_ref()
            .find_map(|(k, w)| Some((k, w.upgrade()?)))
    }

    /// At most the entries not yet looked at (dead ones are not known
    /// until then).
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, self.entries.size_hint().1)
    }
}

impl<K, V: ?Sized> std::iter::FusedIterator for WeakValueMapIter<'_, K, V> {}

impl<K, V: ?Sized> Clone for WeakValueMapIter<'_, K, V> {
    fn clone(&self) -> Self {
        WeakValueMapIter {
            entries: self.entries.clone(),
        }
    }
}

impl<K: fmt::Debug, V: ?Sized + fmt::Debug> fmt::Debug for WeakValueMapIter<'_, K, V> {
    /// The live entries still to come.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.clone()).finish()
    }
}

impl<'a, K, V: ?Sized> IntoIterator for &'a WeakValueMap<K, V> {
    type Item = (&'a K, Gc<V>);
    type IntoIter = WeakValueMapIter<'a, K, V>;

    /// As [`WeakValueMap::iter`].
    ///
    /// ```
    /// use rcycle::{Gc, WeakValueMap};
    /// let a = Gc::new(1);
    /// let mut map = WeakValueMap::new();
    /// map.insert("a", &a);
    /// for (key, object) in &map {
    ///     assert_eq!((*key, *object), ("a", 1));
    /// }
    /// ```
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

// SAFETY: the map owns each key once and its values are weak handles, which
// own no edge. The inner `HashMap`'s impl reports each key's `Gc`s once,
// labelled by the key, and nothing for the `WeakGc` values; it mutates
// nothing. Dead entries' keys are reported too: the map owns them until it
// drops the entry.
unsafe impl<K: Trace + fmt::Debug, V: ?Sized> Trace for WeakValueMap<K, V> {
    fn trace(&self, tracer: &mut Tracer<'_>) {
        self.map.trace(tracer)
    }
    fn may_contain_gc() -> bool {
        K::may_contain_gc()
    }
    /// The table and the keys (the `HashMap`'s).
    fn heap_size(&self) -> usize {
        self.map.heap_size()
    }
    fn __inert_heap_size(&self, depth: u32) -> Option<usize> {
        self.map.__inert_heap_size(depth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::INERT_DEPTH;

    #[test]
    fn heap_size_is_the_table_and_the_keys() {
        let a = Gc::new(1u8);
        let mut map = WeakValueMap::new();
        map.insert(String::with_capacity(10), &a);
        let table = map.map.capacity() * (size_of::<(String, WeakGc<u8>)>() + 1);
        assert!(table > 0);
        assert_eq!(map.heap_size(), table + 10);
        assert_eq!(map.__inert_heap_size(INERT_DEPTH), Some(table + 10));
        assert!(!<WeakValueMap<String, u8> as Trace>::may_contain_gc());
        assert!(<WeakValueMap<Gc<u8>, u8> as Trace>::may_contain_gc());
    }
}
