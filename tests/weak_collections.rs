//! Model-based random tests of `WeakValueMap`, `WeakKeyMap` and `WeakSet`.
//!
//! Proptest generates random sequences of [`Op`]s. Some act on a pool of
//! `Obj`s (make one, link two, so that cycles form; drop or clone a handle;
//! `collect()`), the others on the container under test (insert, remove,
//! get, contains, iterate, len, retain, clear, remove_dead). Each container
//! operation is applied to the container and to a model: a plain map or
//! list of the entries, each with the object's id and a `WeakGc` to it.
//! The `WeakGc`s say which objects are live (upgrade is the containers'
//! own test of a dead entry); after every step the model forgets its dead
//! entries at once, and the container must agree with it exactly: the
//! entries `iter` yields, `len`, `is_empty`, and `get`/`contains` of every
//! key the test can name. The model forgetting at once is what lets freed
//! objects' memory be reused while the container still has (lazily kept)
//! dead entries, so a new object at a purged entry's address must not be
//! taken for the old one.
//!
//! Also checked: `collect()` returns exactly the number of `Obj` values it
//! dropped; a `WeakKeyMap`'s values are dropped exactly when their entries
//! go (after `remove_dead`, `retain` or `clear`, exactly the model's values
//! are left); and after `remove_dead` the heap holds exactly the live
//! objects (a dead entry keeps its object's memory, nothing else does).

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use rcycle::{collect, object_count, Gc, Trace, WeakGc, WeakKeyMap, WeakSet, WeakValueMap};

/// Most objects one case makes (later `New`s do nothing).
const MAX_OBJECTS: usize = 24;
/// Most operations in one case.
const MAX_OPS: usize = if cfg!(miri) { 24 } else { 160 };
/// Cases per container.
const CASES: u32 = if cfg!(miri) { 4 } else { 256 };
/// `WeakValueMap` keys are `0..KEYS`.
const KEYS: u8 = 6;

thread_local! {
    /// `Obj` values not dropped yet.
    static LIVE_OBJECTS: Cell<usize> = const { Cell::new(0) };
    /// Tags of the `Tagged` values not dropped yet.
    static LIVE_TAGS: RefCell<BTreeSet<u32>> = const { RefCell::new(BTreeSet::new()) };
}

fn live_objects() -> usize {
    LIVE_OBJECTS.with(Cell::get)
}

fn live_tags() -> BTreeSet<u32> {
    LIVE_TAGS.with(|t| t.borrow().clone())
}

#[derive(Trace)]
struct Obj {
    id: usize,
    edges: RefCell<Vec<Gc<Obj>>>,
}

impl Drop for Obj {
    fn drop(&mut self) {
        LIVE_OBJECTS.with(|n| n.set(n.get() - 1));
    }
}

/// A `WeakKeyMap` value: a tag, and maybe a strong handle to an object
/// (its own key, sometimes: then the map keeps the key alive).
struct Tagged {
    tag: u32,
    _target: Option<Gc<Obj>>,
}

impl Drop for Tagged {
    fn drop(&mut self) {
        LIVE_TAGS.with(|t| assert!(t.borrow_mut().remove(&self.tag), "tag dropped twice"));
    }
}

/// Indices are reduced modulo the length of what they index when the
/// operation runs; an operation with nothing to index does nothing.
#[derive(Clone, Debug)]
enum Op {
    New,
    /// `handles[a].edges.push(handles[b].clone())`.
    Link(usize, usize),
    DropHandle(usize),
    CloneHandle(usize),
    Collect,
    /// Value map: key `a`, object `handles[b]`. Key map: object
    /// `handles[a]`, a new value, holding `handles[b / 2]` when `b` is
    /// even. Set: object `handles[a]`.
    Insert(usize, usize),
    Remove(usize),
    /// (The value map keeps the handle `get` returns.)
    Get(usize),
    Contains(usize),
    /// Iterates, and keeps the handle to the object of lowest id.
    Iterate,
    Len,
    /// Keeps the entries whose `(key or id) + (id or tag)` is not a
    /// multiple of `2 + n % 3`.
    Retain(usize),
    Clear,
    RemoveDead,
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let i = || 0..2 * MAX_OBJECTS;
    prop_oneof![
        6 => Just(Op::New),
        3 => (i(), i()).prop_map(|(a, b)| Op::Link(a, b)),
        4 => i().prop_map(Op::DropHandle),
        1 => i().prop_map(Op::CloneHandle),
        2 => Just(Op::Collect),
        8 => (i(), i()).prop_map(|(a, b)| Op::Insert(a, b)),
        2 => i().prop_map(Op::Remove),
        2 => i().prop_map(Op::Get),
        1 => i().prop_map(Op::Contains),
        1 => Just(Op::Iterate),
        1 => Just(Op::Len),
        1 => i().prop_map(Op::Retain),
        1 => Just(Op::Clear),
        1 => Just(Op::RemoveDead),
    ]
}

fn ops_strategy() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op_strategy(), 0..=MAX_OPS)
}

/// The pool of objects and the strong handles the test holds.
struct Objects {
    handles: Vec<Gc<Obj>>,
    made: usize,
    /// `object_count()` when the case started.
    base: usize,
    next_tag: u32,
}

impl Objects {
    fn new() -> Objects {
        // Free whatever a failed case left behind, then start counting.
        collect();
        LIVE_OBJECTS.with(|n| n.set(0));
        LIVE_TAGS.with(|t| t.borrow_mut().clear());
        Objects {
            handles: Vec::new(),
            made: 0,
            base: object_count(),
            next_tag: 0,
        }
    }

    fn pick(&self, i: usize) -> Option<&Gc<Obj>> {
        (!self.handles.is_empty()).then(|| &self.handles[i % self.handles.len()])
    }

    /// Applies `op` if it acts on the pool; returns whether it did.
    fn apply(&mut self, op: &Op) -> bool {
        match *op {
            Op::New => {
                if self.made < MAX_OBJECTS {
                    LIVE_OBJECTS.with(|n| n.set(n.get() + 1));
                    let id = self.made;
                    self.made += 1;
                    self.handles.push(Gc::new(Obj {
                        id,
                        edges: RefCell::new(Vec::new()),
                    }));
                }
            }
            Op::Link(a, b) => {
                if let (Some(a), Some(b)) = (self.pick(a), self.pick(b)) {
                    a.edges.borrow_mut().push(b.clone());
                }
            }
            Op::DropHandle(i) => {
                if !self.handles.is_empty() {
                    let i = i % self.handles.len();
                    self.handles.swap_remove(i);
                }
            }
            Op::CloneHandle(i) => {
                if let Some(g) = self.pick(i).cloned() {
                    self.handles.push(g);
                }
            }
            Op::Collect => {
                let before = live_objects();
                let freed = collect();
                assert_eq!(freed, before - live_objects(), "collect() return value");
            }
            _ => return false,
        }
        true
    }

    fn tagged(&mut self, target: Option<Gc<Obj>>) -> Tagged {
        let tag = self.next_tag;
        self.next_tag += 1;
        LIVE_TAGS.with(|t| t.borrow_mut().insert(tag));
        Tagged {
            tag,
            _target: target,
        }
    }

    /// Keeps `g` if it is the object of lowest id yielded so far.
    fn keep_lowest(lowest: &mut Option<Gc<Obj>>, g: Gc<Obj>) {
        if lowest.as_ref().is_none_or(|l| g.id < l.id) {
            *lowest = Some(g);
        }
    }

    /// The heap holds exactly the live objects (no dead entry keeps one).
    fn check_no_dead_memory(&self) {
        assert_eq!(object_count(), self.base + live_objects(), "object_count()");
    }

    /// Drops every handle and checks the heap is back where it started.
    fn finish(mut self) {
        self.handles.clear();
        collect();
        assert_eq!(live_objects(), 0, "objects left after the final collect");
        assert_eq!(live_tags(), BTreeSet::new(), "values left at the end");
        assert_eq!(object_count(), self.base, "object_count() at the end");
    }
}

fn is_live<T: ?Sized>(weak: &WeakGc<T>) -> bool {
    weak.upgrade().is_some()
}

fn retain_keeps(a: usize, b: usize, n: usize) -> bool {
    (a + b) % (2 + n % 3) != 0
}

// ---------------------------------------------------------------------------
// WeakValueMap<u8, Obj> against a `BTreeMap<u8, (id, WeakGc)>`.

fn run_value_map(ops: &[Op]) {
    let mut objects = Objects::new();
    let mut map: WeakValueMap<u8, Obj> = WeakValueMap::new();
    let mut model: BTreeMap<u8, (usize, WeakGc<Obj>)> = BTreeMap::new();
    let ids = |model: &BTreeMap<u8, (usize, WeakGc<Obj>)>| -> BTreeMap<u8, usize> {
        model.iter().map(|(&k, (id, _))| (k, *id)).collect()
    };
    for (step, op) in ops.iter().enumerate() {
        if !objects.apply(op) {
            let key = |n: usize| (n % usize::from(KEYS)) as u8;
            match *op {
                Op::Insert(k, b) => {
                    if let Some(g) = objects.pick(b).cloned() {
                        let previous = map.insert(key(k), &g).map(|p| p.id);
                        let expect = model.insert(key(k), (g.id, Gc::downgrade(&g)));
                        assert_eq!(previous, expect.map(|(id, _)| id), "step {step}: insert");
                    }
                }
                Op::Remove(k) => {
                    let removed = map.remove(&key(k)).map(|g| g.id);
                    let expect = model.remove(&key(k)).map(|(id, _)| id);
                    assert_eq!(removed, expect, "step {step}: remove");
                }
                Op::Get(k) => {
                    if let Some(g) = map.get(&key(k)) {
                        objects.handles.push(g);
                    }
                }
                Op::Contains(k) => {
                    assert_eq!(map.contains_key(&key(k)), model.contains_key(&key(k)));
                }
                Op::Iterate => {
                    let mut lowest = None;
                    for (_, g) in map.iter() {
                        Objects::keep_lowest(&mut lowest, g);
                    }
                    objects.handles.extend(lowest);
                }
                Op::Len => assert_eq!(map.len(), model.len(), "step {step}: len"),
                Op::Retain(n) => {
                    let mut seen = BTreeMap::new();
                    map.retain(|&k, g| {
                        seen.insert(k, g.id);
                        retain_keeps(k.into(), g.id, n)
                    });
                    assert_eq!(seen, ids(&model), "step {step}: entries retain saw");
                    model.retain(|&k, (id, _)| retain_keeps(k.into(), *id, n));
                }
                Op::Clear => {
                    map.clear();
                    model.clear();
                }
                Op::RemoveDead => {
                    map.remove_dead();
                    model.retain(|_, (_, w)| is_live(w));
                    objects.check_no_dead_memory();
                }
                _ => unreachable!(),
            }
        }
        // The model forgets its dead entries at once.
        model.retain(|_, (_, w)| is_live(w));
        let expect = ids(&model);
        let mut real = BTreeMap::new();
        for (&k, g) in map.iter() {
            assert!(real.insert(k, g.id).is_none(), "step {step}: key {k} twice");
        }
        assert_eq!(real, expect, "step {step}: live entries");
        assert_eq!(map.len(), expect.len(), "step {step}: len");
        assert_eq!(map.is_empty(), expect.is_empty(), "step {step}: is_empty");
        for k in 0..KEYS {
            let got = map.get(&k).map(|g| g.id);
            assert_eq!(got, expect.get(&k).copied(), "step {step}: get({k})");
            assert_eq!(
                map.contains_key(&k),
                got.is_some(),
                "step {step}: contains_key({k})"
            );
        }
    }
    drop((map, model));
    objects.finish();
}

// ---------------------------------------------------------------------------
// WeakKeyMap<Obj, Tagged> against a list of (id, WeakGc, tag).

/// Drops dead entries until no more values go: dropping a dead entry's
/// value can free the key of another entry.
fn remove_dead_until_stable(map: &mut WeakKeyMap<Obj, Tagged>) {
    loop {
        let before = live_tags().len();
        map.remove_dead();
        if live_tags().len() == before {
            return;
        }
    }
}

fn run_key_map(ops: &[Op]) {
    type Model = Vec<(usize, WeakGc<Obj>, u32)>;
    let mut objects = Objects::new();
    let mut map: WeakKeyMap<Obj, Tagged> = WeakKeyMap::new();
    let mut model: Model = Vec::new();
    let tags = |model: &Model| -> BTreeMap<usize, u32> {
        model.iter().map(|&(id, _, tag)| (id, tag)).collect()
    };
    let find = |model: &Model, id: usize| model.iter().position(|e| e.0 == id);
    for (step, op) in ops.iter().enumerate() {
        if !objects.apply(op) {
            match *op {
                Op::Insert(a, b) => {
                    if let Some(key) = objects.pick(a).cloned() {
                        let target = if b % 2 == 0 {
                            objects.pick(b / 2).cloned()
                        } else {
                            None
                        };
                        let value = objects.tagged(target);
                        let tag = value.tag;
                        let previous = map.insert(&key, value).map(|v| v.tag);
                        let expect = match find(&model, key.id) {
                            Some(i) => Some(std::mem::replace(&mut model[i].2, tag)),
                            None => {
                                model.push((key.id, Gc::downgrade(&key), tag));
                                None
                            }
                        };
                        assert_eq!(previous, expect, "step {step}: insert");
                    }
                }
                Op::Remove(a) => {
                    if let Some(key) = objects.pick(a).cloned() {
                        let removed = map.remove(&key).map(|v| v.tag);
                        let expect = find(&model, key.id).map(|i| model.swap_remove(i).2);
                        assert_eq!(removed, expect, "step {step}: remove");
                    }
                }
                Op::Get(a) => {
                    if let Some(key) = objects.pick(a).cloned() {
                        let expect = find(&model, key.id).map(|i| model[i].2);
                        assert_eq!(map.get_mut(&key).map(|v| v.tag), expect, "step {step}");
                    }
                }
                Op::Contains(a) => {
                    if let Some(key) = objects.pick(a) {
                        let expect = find(&model, key.id).is_some();
                        assert_eq!(map.contains_key(key), expect, "step {step}: contains");
                    }
                }
                Op::Iterate => {
                    let mut lowest = None;
                    for (g, _) in map.iter() {
                        Objects::keep_lowest(&mut lowest, g);
                    }
                    objects.handles.extend(lowest);
                }
                Op::Len => assert_eq!(map.len(), model.len(), "step {step}: len"),
                Op::Retain(n) => {
                    let before = tags(&model);
                    let mut seen = BTreeMap::new();
                    map.retain(|g, v| {
                        seen.insert(g.id, v.tag);
                        retain_keeps(g.id, v.tag as usize, n)
                    });
                    // A dropped value can free the key of an entry not
                    // visited yet: that one is dead, not seen.
                    model.retain(|e| is_live(&e.1));
                    let after = tags(&model);
                    assert!(
                        after.iter().all(|(id, tag)| seen.get(id) == Some(tag))
                            && seen.iter().all(|(id, tag)| before.get(id) == Some(tag)),
                        "step {step}: retain saw {seen:?}; live before {before:?}, after {after:?}"
                    );
                    model.retain(|e| retain_keeps(e.0, e.2 as usize, n));
                    remove_dead_until_stable(&mut map);
                    model.retain(|e| is_live(&e.1));
                    let expect: BTreeSet<u32> = model.iter().map(|e| e.2).collect();
                    assert_eq!(live_tags(), expect, "step {step}: values after retain");
                }
                Op::Clear => {
                    map.clear();
                    model.clear();
                    assert_eq!(
                        live_tags(),
                        BTreeSet::new(),
                        "step {step}: values after clear"
                    );
                }
                Op::RemoveDead => {
                    remove_dead_until_stable(&mut map);
                    model.retain(|e| is_live(&e.1));
                    let expect: BTreeSet<u32> = model.iter().map(|e| e.2).collect();
                    assert_eq!(live_tags(), expect, "step {step}: values after remove_dead");
                    objects.check_no_dead_memory();
                }
                _ => unreachable!(),
            }
        }
        model.retain(|e| is_live(&e.1));
        let expect = tags(&model);
        let mut real = BTreeMap::new();
        for (g, v) in map.iter() {
            assert!(
                real.insert(g.id, v.tag).is_none(),
                "step {step}: object {} twice",
                g.id
            );
        }
        assert_eq!(real, expect, "step {step}: live entries");
        assert_eq!(map.len(), expect.len(), "step {step}: len");
        assert_eq!(map.is_empty(), expect.is_empty(), "step {step}: is_empty");
        for key in &objects.handles {
            let got = map.get(key).map(|v| v.tag);
            assert_eq!(
                got,
                expect.get(&key.id).copied(),
                "step {step}: get({})",
                key.id
            );
            assert_eq!(
                map.contains_key(key),
                got.is_some(),
                "step {step}: contains_key"
            );
        }
        let kept = live_tags();
        assert!(
            expect.values().all(|t| kept.contains(t)),
            "step {step}: a live entry's value was dropped"
        );
    }
    drop((map, model));
    objects.finish();
}

// ---------------------------------------------------------------------------
// WeakSet<Obj> against a list of (id, WeakGc).

fn run_set(ops: &[Op]) {
    let mut objects = Objects::new();
    let mut set: WeakSet<Obj> = WeakSet::new();
    let mut model: Vec<(usize, WeakGc<Obj>)> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        if !objects.apply(op) {
            let find = |model: &[(usize, WeakGc<Obj>)], id| model.iter().position(|e| e.0 == id);
            match *op {
                Op::Insert(a, _) => {
                    if let Some(g) = objects.pick(a).cloned() {
                        let expect = find(&model, g.id).is_none();
                        if expect {
                            model.push((g.id, Gc::downgrade(&g)));
                        }
                        assert_eq!(set.insert(&g), expect, "step {step}: insert");
                    }
                }
                Op::Remove(a) => {
                    if let Some(g) = objects.pick(a).cloned() {
                        let expect = find(&model, g.id).map(|i| model.swap_remove(i));
                        assert_eq!(set.remove(&g), expect.is_some(), "step {step}: remove");
                    }
                }
                Op::Get(a) | Op::Contains(a) => {
                    if let Some(g) = objects.pick(a) {
                        let expect = find(&model, g.id).is_some();
                        assert_eq!(set.contains(g), expect, "step {step}: contains");
                    }
                }
                Op::Iterate => {
                    let mut lowest = None;
                    for g in set.iter() {
                        Objects::keep_lowest(&mut lowest, g);
                    }
                    objects.handles.extend(lowest);
                }
                Op::Len => assert_eq!(set.len(), model.len(), "step {step}: len"),
                Op::Retain(n) => {
                    let mut seen = BTreeSet::new();
                    set.retain(|g| {
                        seen.insert(g.id);
                        retain_keeps(g.id, g.id / 2, n)
                    });
                    let expect: BTreeSet<usize> = model.iter().map(|e| e.0).collect();
                    assert_eq!(seen, expect, "step {step}: members retain saw");
                    model.retain(|e| retain_keeps(e.0, e.0 / 2, n));
                }
                Op::Clear => {
                    set.clear();
                    model.clear();
                }
                Op::RemoveDead => {
                    set.remove_dead();
                    model.retain(|e| is_live(&e.1));
                    objects.check_no_dead_memory();
                }
                _ => unreachable!(),
            }
        }
        model.retain(|e| is_live(&e.1));
        let expect: BTreeSet<usize> = model.iter().map(|e| e.0).collect();
        let mut real = BTreeSet::new();
        for g in set.iter() {
            assert!(real.insert(g.id), "step {step}: object {} twice", g.id);
        }
        assert_eq!(real, expect, "step {step}: live members");
        assert_eq!(set.len(), expect.len(), "step {step}: len");
        assert_eq!(set.is_empty(), expect.is_empty(), "step {step}: is_empty");
        for g in &objects.handles {
            assert_eq!(
                set.contains(g),
                expect.contains(&g.id),
                "step {step}: contains"
            );
        }
    }
    drop((set, model));
    objects.finish();
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        // Miri runs isolated from the file system.
        failure_persistence: if cfg!(miri) {
            None
        } else {
            ProptestConfig::default().failure_persistence
        },
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn weak_value_map_agrees_with_the_model(ops in ops_strategy()) {
        run_value_map(&ops);
    }

    #[test]
    fn weak_key_map_agrees_with_the_model(ops in ops_strategy()) {
        run_key_map(&ops);
    }

    #[test]
    fn weak_set_agrees_with_the_model(ops in ops_strategy()) {
        run_set(&ops);
    }
}
