//! Deterministic tests of `WeakValueMap`, `WeakKeyMap` and `WeakSet`: one
//! story per container, the purge schedule's exact numbers, dead boxes and
//! objects being collected, the containers inside `Gc` objects (what their
//! `Trace` impls report, dead entries included) and the labels reports give
//! their edges. Every test runs on its own thread, so heap counts are exact.
//! (The random model-based tests are in `weak_collections.rs`.)

use std::cell::{Cell, RefCell};
use std::hash::{Hash, Hasher};
use std::rc::Rc;

use rcycle::{
    coerce_gc, collect, object_count, why_alive, Gc, Trace, WeakKeyMap, WeakSet, WeakValueMap,
};

thread_local! {
    /// Ids of the `Node`s dropped.
    static DROPPED: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

fn dropped() -> Vec<u32> {
    DROPPED.with(|d| d.borrow().clone())
}

#[derive(Trace, Debug)]
struct Node {
    id: u32,
    next: RefCell<Option<Gc<Node>>>,
}

impl Drop for Node {
    fn drop(&mut self) {
        DROPPED.with(|d| d.borrow_mut().push(self.id));
    }
}

fn node(id: u32) -> Gc<Node> {
    Gc::new(Node {
        id,
        next: RefCell::new(None),
    })
}

/// Two nodes pointing at each other.
fn pair(a: u32, b: u32) -> (Gc<Node>, Gc<Node>) {
    let (a, b) = (node(a), node(b));
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(a.clone());
    (a, b)
}

#[test]
fn weak_value_map_is_a_cache_that_keeps_nothing_alive() {
    let mut cache: WeakValueMap<String, Node> = WeakValueMap::new();
    let one = node(1);
    let (two, three) = pair(2, 3);
    assert!(cache.insert("one".into(), &one).is_none());
    assert!(cache.insert("two".into(), &two).is_none());
    assert!(cache.insert("three".into(), &three).is_none());
    let previous = cache.insert("one".into(), &two).unwrap();
    assert!(Gc::ptr_eq(&previous, &one));
    assert_eq!(cache.insert("one".into(), &one).unwrap().id, 2);
    drop(previous);

    assert_eq!(cache.get("two").unwrap().id, 2); // a `&str` finds a `String`
    assert!(cache.contains_key("three") && !cache.contains_key("four"));
    assert_eq!(cache.len(), 3);

    drop(one); // freed at once: its entry is dead
    assert_eq!(dropped(), [1]);
    assert!(cache.get("one").is_none() && !cache.contains_key("one"));
    assert_eq!(cache.len(), 2);
    let mut ids: Vec<(String, u32)> = cache.iter().map(|(k, g)| (k.clone(), g.id)).collect();
    ids.sort();
    assert_eq!(ids, [("three".to_string(), 3), ("two".to_string(), 2)]);

    drop((two, three)); // a cycle: alive until collected
    assert_eq!(cache.len(), 2);
    assert_eq!(collect(), 2);
    assert_eq!(cache.len(), 0);
    assert!(cache.is_empty() && cache.iter().next().is_none());
    assert_eq!(format!("{cache:?}"), "{}");
    assert!(cache.remove("two").is_none());
}

#[test]
fn weak_value_map_drops_dead_entries_keys_in_remove_dead_and_retain() {
    let key = |name: &str| Rc::new(name.to_string());
    let (a, b, c) = (key("a"), key("b"), key("c"));
    let (x, y, z) = (node(1), node(2), node(3));
    let mut map: WeakValueMap<Rc<String>, Node> = WeakValueMap::new();
    map.insert(a.clone(), &x);
    map.insert(b.clone(), &y);
    map.insert(c.clone(), &z);
    drop(x);
    assert_eq!(Rc::strong_count(&a), 2, "a dead entry keeps its key");
    map.remove_dead();
    assert_eq!(Rc::strong_count(&a), 1);
    drop(y);
    let mut seen = Vec::new();
    map.retain(|k, g| {
        seen.push((k.to_string(), g.id));
        false
    });
    assert_eq!(
        seen,
        [("c".to_string(), 3)],
        "retain sees live entries only"
    );
    assert_eq!([Rc::strong_count(&b), Rc::strong_count(&c)], [1, 1]);
    assert!(map.remove(&c).is_none());
}

#[test]
fn weak_key_map_attaches_data_to_objects_by_identity() {
    let (a, b) = (node(7), node(7)); // equal ids, two objects
    let notes = Rc::new("note".to_string());
    let mut map: WeakKeyMap<Node, Rc<String>> = WeakKeyMap::new();
    assert!(map.insert(&a, notes.clone()).is_none());
    assert!(!map.contains_key(&b), "keys are objects, not values");
    assert!(map.insert(&b, notes.clone()).is_none());
    assert_eq!(Rc::strong_count(&notes), 3);
    let old = map.insert(&a.clone(), Rc::new("new".into())).unwrap();
    assert!(Rc::ptr_eq(&old, &notes));
    drop(old);
    assert_eq!(map.get(&a).map(|s| s.as_str()), Some("new"));
    *map.get_mut(&b).unwrap() = Rc::new("b".into());
    assert_eq!(Rc::strong_count(&notes), 1);
    assert_eq!(map.len(), 2);

    drop(a);
    assert_eq!(map.len(), 1);
    let entries: Vec<(u32, String)> = map.iter().map(|(k, v)| (k.id, v.to_string())).collect();
    assert_eq!(entries, [(7, "b".to_string())]);
    assert_eq!(map.remove(&b).unwrap().as_str(), "b");
    assert!(map.is_empty() && map.remove(&b).is_none());
}

#[test]
fn weak_key_map_values_go_with_their_entries() {
    let value = Rc::new(());
    let (a, b) = pair(1, 2);
    let mut map: WeakKeyMap<Node, Rc<()>> = [(&a, value.clone()), (&b, value.clone())]
        .into_iter()
        .collect();
    drop((a, b));
    assert_eq!(collect(), 2);
    assert!(map.is_empty());
    assert_eq!(Rc::strong_count(&value), 3, "dead entries own their values");
    map.remove_dead();
    assert_eq!(Rc::strong_count(&value), 1);

    let c = node(3);
    map.insert(&c, value.clone());
    map.clear();
    assert_eq!(Rc::strong_count(&value), 1);
    assert!(!map.contains_key(&c));
}

#[test]
fn weak_set_is_a_registry_of_live_objects() {
    let (a, b, c) = (node(1), node(2), node(3));
    let mut set: WeakSet<Node> = [&a, &b].into_iter().collect();
    assert!(set.insert(&c));
    assert!(!set.insert(&a.clone()));
    assert!(set.contains(&b) && !set.contains(&node(2)));
    drop(b);
    assert_eq!(set.len(), 2);
    let mut ids: Vec<u32> = set.iter().map(|g| g.id).collect();
    ids.sort();
    assert_eq!(ids, [1, 3]);
    set.retain(|g| g.id != 3);
    assert!(!set.contains(&c));
    assert!(set.remove(&a) && !set.remove(&a));
    assert!(set.is_empty());
    set.extend([&c]);
    assert_eq!(
        format!("{set:?}"),
        "{Node { id: 3, next: RefCell { value: None } }}"
    );
}

/// A value aligned to 64 bytes: its object's value starts further from the
/// header than a `u8`'s does.
#[derive(Trace, Debug)]
#[repr(align(64))]
struct Aligned(u8);

#[test]
fn unsized_objects_of_several_types_are_told_apart() {
    let objects: Vec<Gc<dyn std::fmt::Debug>> = vec![
        coerce_gc!(Gc::new(1u8) => dyn std::fmt::Debug),
        coerce_gc!(Gc::new(Aligned(2)) => dyn std::fmt::Debug),
        coerce_gc!(Gc::new(()) => dyn std::fmt::Debug),
        coerce_gc!(Gc::new([4u64; 3]) => dyn std::fmt::Debug),
    ];
    let mut keys: WeakKeyMap<dyn std::fmt::Debug, usize> = WeakKeyMap::new();
    let mut set: WeakSet<dyn std::fmt::Debug> = WeakSet::new();
    for (i, g) in objects.iter().enumerate() {
        assert!(keys.insert(g, i).is_none());
        assert!(set.insert(g));
    }
    for (i, g) in objects.iter().enumerate() {
        assert_eq!(keys.get(g), Some(&i));
        assert!(set.contains(g));
    }
    assert_eq!(format!("{:?}", keys.get(&objects[1])), "Some(1)");
    let slice: Gc<[u16]> = coerce_gc!(Gc::new([1u16, 2, 3]) => [u16]);
    let mut values: WeakValueMap<&str, [u16]> = WeakValueMap::new();
    values.insert("s", &slice);
    assert_eq!(values.get("s").as_deref(), Some(&[1u16, 2, 3][..]));
    drop((objects, slice));
    assert!(keys.is_empty() && set.is_empty() && values.is_empty());
}

/// Fills a fresh container with 100 objects that then die, and inserts new
/// live ones: the purge comes exactly at the insert the schedule says. The
/// live objects' inserts before purged at 2, 4, 8, 16, 32 and 64 (63
/// entries kept, 37 inserts since); the 28th insert after that makes 65
/// inserts against 63 kept: it purges first. `insert(key, object)` inserts
/// into the container under test; the live objects are returned.
fn purge_schedule(mut insert: impl FnMut(u32, &Gc<Node>)) -> Vec<Gc<Node>> {
    let base = object_count();
    let doomed: Vec<Gc<Node>> = (0..100).map(node).collect();
    for (k, g) in (0..).zip(&doomed) {
        insert(k, g);
    }
    drop(doomed);
    assert_eq!(
        object_count(),
        base + 100,
        "dead entries keep their objects' memory"
    );
    let mut live = Vec::new();
    for k in 100..127 {
        live.push(node(k));
        insert(k, live.last().unwrap());
    }
    assert_eq!(object_count(), base + 100 + 27, "no purge yet");
    live.push(node(127));
    insert(127, live.last().unwrap());
    assert_eq!(object_count(), base + 28, "the 28th insert purged");
    live
}

#[test]
fn inserts_purge_dead_entries_on_schedule() {
    let mut values = WeakValueMap::new();
    let live = purge_schedule(|k, g| assert!(values.insert(k, g).is_none()));
    assert_eq!(values.len(), 28);
    drop(live);
    let mut keys = WeakKeyMap::new();
    let live = purge_schedule(|k, g| assert!(keys.insert(g, k).is_none()));
    assert_eq!(keys.len(), 28);
    drop(live);
    let mut set = WeakSet::new();
    let live = purge_schedule(|_, g| assert!(set.insert(g)));
    assert_eq!(set.len(), 28);
    drop(live);
}

/// A node whose `Drop` stashes its neighbour (a dead box, or a member being
/// collected) and tries to add it to the containers.
#[derive(Trace)]
struct Stasher {
    other: RefCell<Option<Gc<Stasher>>>,
}

thread_local! {
    static STASH: RefCell<Vec<Gc<Stasher>>> = const { RefCell::new(Vec::new()) };
    static INSERTED_IN_DROP: RefCell<Vec<bool>> = const { RefCell::new(Vec::new()) };
}

impl Drop for Stasher {
    fn drop(&mut self) {
        if let Some(other) = self.other.borrow_mut().take() {
            let mut set = WeakSet::new();
            let mut values = WeakValueMap::new();
            let mut keys = WeakKeyMap::new();
            let inserted = [
                set.insert(&other),
                values.insert(0, &other).is_some() || values.contains_key(&0),
                keys.insert(&other, ()).is_some() || keys.contains_key(&other),
            ];
            INSERTED_IN_DROP.with(|i| i.borrow_mut().extend(inserted));
            STASH.with(|s| s.borrow_mut().push(other));
        }
    }
}

#[test]
fn dead_boxes_and_objects_being_collected_are_dead() {
    let a = Gc::new(Stasher {
        other: RefCell::new(None),
    });
    let b = Gc::new(Stasher {
        other: RefCell::new(Some(a.clone())),
    });
    *a.other.borrow_mut() = Some(b.clone());
    let mut set = WeakSet::new();
    let mut values = WeakValueMap::new();
    let mut keys = WeakKeyMap::new();
    set.insert(&a);
    values.insert("a", &a);
    keys.insert(&a, Rc::new(()));
    drop((a, b));
    assert_eq!(collect(), 2);
    // Each `Drop` saw its neighbour either being collected or dropped.
    assert_eq!(INSERTED_IN_DROP.with(|i| i.borrow().clone()), [false; 6]);
    let stash = STASH.with(|s| std::mem::take(&mut *s.borrow_mut()));
    assert!(
        stash.iter().all(|g| Gc::try_deref(g).is_none()),
        "dead boxes"
    );

    assert!(set.is_empty() && values.is_empty() && keys.is_empty());
    for dead in &stash {
        assert!(!set.insert(dead) && !set.contains(dead));
        assert!(values.insert("a", dead).is_none() && values.get("a").is_none());
        let value = Rc::new(());
        assert!(keys.insert(dead, value.clone()).is_none());
        assert_eq!(Rc::strong_count(&value), 1, "not stored");
        assert!(keys.get(dead).is_none() && keys.remove(dead).is_none());
    }
    assert!(set.is_empty() && values.is_empty() && keys.is_empty());
}

// ---------------------------------------------------------------------------
// In `Gc` objects: what the `Trace` impls report.

#[derive(Trace)]
struct Annotated {
    id: u32,
    notes: RefCell<WeakKeyMap<Annotated, Note>>,
}

#[derive(Trace)]
struct Note {
    about: Gc<Annotated>,
    text: String,
}

fn annotated(id: u32) -> Gc<Annotated> {
    Gc::new(Annotated {
        id,
        notes: RefCell::new(WeakKeyMap::new()),
    })
}

fn note(about: &Gc<Annotated>) -> Note {
    Note {
        about: about.clone(),
        text: "seen".into(),
    }
}

#[test]
fn a_cycle_through_a_weak_key_map_value_is_collected() {
    let base = object_count();
    let a = annotated(1);
    a.notes.borrow_mut().insert(&a, note(&a)); // a -> map -> value -> a
    let weak = Gc::downgrade(&a);
    drop(a);
    assert_eq!(collect(), 1);
    assert!(weak.upgrade().is_none());
    drop(weak);
    assert_eq!(object_count(), base);
}

#[test]
fn a_dead_entrys_value_is_still_traced() {
    // `holder`'s map has a dead entry (its key is gone) whose value holds
    // `holder`: the collector must see that edge to free the cycle.
    let holder = annotated(1);
    let key = annotated(2);
    holder.notes.borrow_mut().insert(&key, note(&holder));
    drop(key);
    assert!(holder.notes.borrow().is_empty());
    drop(holder);
    assert_eq!(collect(), 1);
}

#[test]
fn a_value_that_holds_its_key_keeps_it_while_the_map_lives() {
    // The ephemeron limitation (as in Python): a map held from outside.
    let mut outside: WeakKeyMap<Annotated, Note> = WeakKeyMap::new();
    let a = annotated(1);
    outside.insert(&a, note(&a));
    let weak = Gc::downgrade(&a);
    drop(a);
    assert_eq!(collect(), 0);
    assert_eq!(outside.len(), 1);
    assert_eq!(outside.iter().next().unwrap().1.text, "seen");
    drop(outside); // the value's handle was the last one
    assert!(weak.upgrade().is_none());
}

/// A key that holds an object, compared by identity.
#[derive(Trace)]
struct ById(Gc<Registry>);

impl PartialEq for ById {
    fn eq(&self, other: &Self) -> bool {
        Gc::ptr_eq(&self.0, &other.0)
    }
}
impl Eq for ById {}
impl Hash for ById {
    fn hash<H: Hasher>(&self, state: &mut H) {
        Gc::as_ptr(&self.0).hash(state)
    }
}
impl std::fmt::Debug for ById {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "registry {}", self.0.id)
    }
}

#[derive(Trace)]
struct Registry {
    id: u32,
    index: RefCell<WeakValueMap<ById, Node>>,
    members: RefCell<WeakSet<Node>>,
}

#[test]
fn weak_value_map_keys_are_edges_and_values_are_not() {
    let registry = Gc::new(Registry {
        id: 1,
        index: RefCell::new(WeakValueMap::new()),
        members: RefCell::new(WeakSet::new()),
    });
    let (live, doomed) = (node(1), node(2));
    let key = |r: &Gc<Registry>| ById(r.clone());
    registry.index.borrow_mut().insert(key(&registry), &live); // a cycle through the key
    registry.members.borrow_mut().insert(&live);
    drop(doomed); // nothing in the registry kept it
    assert_eq!(dropped(), [2]);
    // The handle in the key is an edge from the registry itself, so the
    // heap sees no holder besides the handle passed in (an unreported key
    // would show as "<held outside>").
    assert!(why_alive(&registry).is_none());
    let weak = Gc::downgrade(&registry);
    drop(registry);
    assert_eq!(collect(), 1, "the registry, not the node it indexes");
    assert!(weak.upgrade().is_none());
    assert_eq!(live.id, 1);
}

#[test]
fn a_dead_entrys_key_is_still_traced() {
    let registry = Gc::new(Registry {
        id: 1,
        index: RefCell::new(WeakValueMap::new()),
        members: RefCell::new(WeakSet::new()),
    });
    let value = node(1);
    registry
        .index
        .borrow_mut()
        .insert(ById(registry.clone()), &value);
    drop(value);
    assert!(registry.index.borrow().is_empty());
    drop(registry);
    assert_eq!(collect(), 1);
}

#[test]
fn a_weak_set_in_an_object_is_no_edge() {
    let base = object_count();
    let a = Gc::new(Registry {
        id: 1,
        index: RefCell::new(WeakValueMap::new()),
        members: RefCell::new(WeakSet::new()),
    });
    let n = node(1);
    a.members.borrow_mut().insert(&n);
    drop(n); // the set did not keep it
    assert_eq!(dropped(), [1]);
    drop(a); // no cycle: freed at once
    assert_eq!(object_count(), base);
}

#[derive(Trace)]
struct Labelled {
    by_object: RefCell<WeakKeyMap<Node, Gc<u64>>>,
    by_name: RefCell<WeakValueMap<Named, Node>>,
}

#[derive(Trace, PartialEq, Eq, Hash, Debug)]
struct Named {
    name: String,
    tag: Gc<u64>,
}

#[test]
fn reports_label_edges_by_key() {
    let key = node(1);
    let (value, tag) = (Gc::new(10u64), Gc::new(20u64));
    let holder = Gc::new(Labelled {
        by_object: RefCell::new(WeakKeyMap::new()),
        by_name: RefCell::new(WeakValueMap::new()),
    });
    holder.by_object.borrow_mut().insert(&key, value.clone());
    let named = Named {
        name: "k".into(),
        tag: tag.clone(),
    };
    holder.by_name.borrow_mut().insert(named, &key);
    assert_eq!(
        why_alive(&value).unwrap().to_string(),
        format!(
            "<held outside> weak_collections_cases::Labelled .by_object[{:p}] -> u64",
            key
        )
    );
    assert_eq!(
        why_alive(&tag).unwrap().to_string(),
        "<held outside> weak_collections_cases::Labelled \
         .by_name[Named { name: \"k\", tag: 20 }].tag -> u64"
    );
    assert!(
        why_alive(&key).is_none(),
        "only this function holds the key: neither container does"
    );
}

#[test]
fn counts_seen_by_the_containers() {
    // `get`, `iter` and `len` make no lasting handle; `insert` adds one weak
    // count per entry, which `remove` gives back.
    let a = node(1);
    let calls = Cell::new(0);
    let mut map = WeakKeyMap::new();
    map.insert(&a, ());
    assert_eq!((Gc::strong_count(&a), Gc::weak_count(&a)), (1, 1));
    map.retain(|g, _| {
        calls.set(calls.get() + 1);
        Gc::strong_count(g) == 2 // the handle `retain` lends
    });
    assert_eq!((calls.get(), map.len()), (1, 1));
    assert_eq!(map.iter().count(), 1);
    assert_eq!((Gc::strong_count(&a), Gc::weak_count(&a)), (1, 1));
    map.remove(&a);
    assert_eq!(Gc::weak_count(&a), 0);
}

/// The named iterators: `for` over a reference, an object freed while an
/// iteration runs is not returned after that, `size_hint` bounds what is
/// left, the iterator is fused, and its `Debug` shows the live entries left.
#[test]
fn named_iterators_skip_objects_freed_meanwhile() {
    let objects: Vec<Gc<u32>> = (0..4).map(Gc::new).collect();
    let mut values: WeakValueMap<u32, u32> = objects.iter().map(|g| (**g, g)).collect();
    let mut keys: WeakKeyMap<u32, u32> = objects.iter().map(|g| (g, **g * 10)).collect();
    let mut set: WeakSet<u32> = objects.iter().collect();
    let mut objects: Vec<Option<Gc<u32>>> = objects.into_iter().map(Some).collect();

    // Drop, after the first entry is returned, every other object: the
    // iteration returns the first one and the others still alive.
    let mut seen = Vec::new();
    let mut it = values.iter();
    assert_eq!(it.size_hint(), (0, Some(4)));
    let (&k, first) = it.next().unwrap();
    seen.push(k);
    for (i, o) in objects.iter_mut().enumerate() {
        if i as u32 != k && i % 2 == 0 {
            *o = None;
        }
    }
    seen.extend(it.by_ref().map(|(k, _)| *k));
    assert_eq!(it.next(), None);
    assert_eq!(it.next(), None, "fused");
    seen.sort();
    let mut expected: Vec<u32> = objects.iter().flatten().map(|g| **g).collect();
    expected.sort();
    assert_eq!(seen, expected);
    drop(first);

    let mut from_keys: Vec<(u32, u32)> = (&keys).into_iter().map(|(k, v)| (*k, *v)).collect();
    from_keys.sort();
    assert_eq!(
        from_keys,
        expected.iter().map(|&k| (k, k * 10)).collect::<Vec<_>>()
    );
    let mut from_set: Vec<u32> = Vec::new();
    for g in &set {
        from_set.push(*g);
    }
    from_set.sort();
    assert_eq!(from_set, expected);

    // Debug shows what is left, as the containers' own Debug does.
    let one = objects.iter().flatten().next().unwrap().clone();
    objects.clear();
    assert_eq!(
        format!("{:?}", values.iter()),
        format!("{{{}: {}}}", *one, *one)
    );
    assert_eq!(
        format!("{:?}", keys.iter()),
        format!("{{{}: {}}}", *one, *one * 10)
    );
    assert_eq!(format!("{:?}", set.iter()), format!("{{{}}}", *one));
    drop(one);
    assert_eq!(
        values.iter().count() + keys.iter().count() + set.iter().count(),
        0
    );
    values.remove_dead();
    keys.remove_dead();
    set.remove_dead();
    assert_eq!(object_count(), 0);
}
