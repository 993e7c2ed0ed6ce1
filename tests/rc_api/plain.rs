//! Values without drop glue (`Gc<u64>`, `Gc<str>`): their last handle frees
//! them without a drop loop. A model-based test against `Rc` and `Weak`: random
//! clones, drops, downgrades and upgrades of both kinds, with the counts, the
//! values, the upgrades and `object_count` compared after every step (an
//! object stays allocated, as a dead box, while a weak handle to it is kept,
//! exactly as an `RcBox` does).

use std::rc::{Rc, Weak};

use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use rcycle::{collect, object_count, Gc, WeakGc};

/// A strong handle of either kind, with the `Rc` twin it is compared with
/// and the id of the object.
enum Strong {
    Num(Gc<u64>, Rc<u64>, usize),
    Text(Gc<str>, Rc<str>, usize),
}

enum Weakly {
    Num(WeakGc<u64>, Weak<u64>, usize),
    Text(WeakGc<str>, Weak<str>, usize),
}

#[derive(Clone, Debug)]
enum Op {
    NewNum(u64),
    NewText(u8),
    Clone(usize),
    Drop(usize),
    Downgrade(usize),
    Upgrade(usize),
    DropWeak(usize),
    Collect,
}

fn op() -> impl Strategy<Value = Op> {
    let i = || 0..32usize;
    prop_oneof![
        3 => any::<u64>().prop_map(Op::NewNum),
        2 => (0..40u8).prop_map(Op::NewText),
        3 => i().prop_map(Op::Clone),
        4 => i().prop_map(Op::Drop),
        3 => i().prop_map(Op::Downgrade),
        2 => i().prop_map(Op::Upgrade),
        2 => i().prop_map(Op::DropWeak),
        1 => Just(Op::Collect),
    ]
}

struct World {
    strong: Vec<Strong>,
    weak: Vec<Weakly>,
    next_id: usize,
}

impl World {
    fn apply(&mut self, op: &Op) {
        match *op {
            Op::NewNum(v) => {
                self.strong
                    .push(Strong::Num(Gc::new(v), Rc::new(v), self.next_id));
                self.next_id += 1;
            }
            Op::NewText(len) => {
                let text: String = (0..len).map(|k| char::from(b'a' + k % 26)).collect();
                self.strong.push(Strong::Text(
                    Gc::from(text.as_str()),
                    Rc::from(text.as_str()),
                    self.next_id,
                ));
                self.next_id += 1;
            }
            Op::Clone(i) if !self.strong.is_empty() => {
                let copy = match &self.strong[i % self.strong.len()] {
                    Strong::Num(g, r, id) => Strong::Num(g.clone(), r.clone(), *id),
                    Strong::Text(g, r, id) => Strong::Text(g.clone(), r.clone(), *id),
                };
                self.strong.push(copy);
            }
            Op::Drop(i) if !self.strong.is_empty() => {
                let n = self.strong.len();
                drop(self.strong.swap_remove(i % n));
            }
            Op::Downgrade(i) if !self.strong.is_empty() => {
                let w = match &self.strong[i % self.strong.len()] {
                    Strong::Num(g, r, id) => Weakly::Num(Gc::downgrade(g), Rc::downgrade(r), *id),
                    Strong::Text(g, r, id) => Weakly::Text(Gc::downgrade(g), Rc::downgrade(r), *id),
                };
                self.weak.push(w);
            }
            Op::Upgrade(j) if !self.weak.is_empty() => {
                let up = match &self.weak[j % self.weak.len()] {
                    Weakly::Num(g, r, id) => {
                        let (g, r) = (g.upgrade(), r.upgrade());
                        assert_eq!(g.is_some(), r.is_some(), "upgrade of object {id}");
                        g.zip(r).map(|(g, r)| Strong::Num(g, r, *id))
                    }
                    Weakly::Text(g, r, id) => {
                        let (g, r) = (g.upgrade(), r.upgrade());
                        assert_eq!(g.is_some(), r.is_some(), "upgrade of object {id}");
                        g.zip(r).map(|(g, r)| Strong::Text(g, r, *id))
                    }
                };
                self.strong.extend(up);
            }
            Op::DropWeak(j) if !self.weak.is_empty() => {
                let n = self.weak.len();
                drop(self.weak.swap_remove(j % n));
            }
            Op::Collect => assert_eq!(collect(), 0, "no cycle was made"),
            _ => {}
        }
    }

    /// Compares every handle with its `Rc` twin, and the heap's object count
    /// with the objects some handle keeps allocated.
    fn check(&self, base: usize) {
        let mut allocated = std::collections::BTreeSet::new();
        for s in &self.strong {
            match s {
                Strong::Num(g, r, id) => {
                    assert_eq!(**g, **r);
                    assert_eq!(Gc::strong_count(g), Rc::strong_count(r), "object {id}");
                    assert_eq!(Gc::weak_count(g), Rc::weak_count(r), "object {id}");
                    allocated.insert(*id);
                }
                Strong::Text(g, r, id) => {
                    assert_eq!(&**g, &**r);
                    assert_eq!(Gc::strong_count(g), Rc::strong_count(r), "object {id}");
                    assert_eq!(Gc::weak_count(g), Rc::weak_count(r), "object {id}");
                    allocated.insert(*id);
                }
            }
        }
        for w in &self.weak {
            match w {
                Weakly::Num(g, r, id) => {
                    assert_eq!(g.strong_count(), r.strong_count(), "object {id}");
                    allocated.insert(*id);
                }
                Weakly::Text(g, r, id) => {
                    assert_eq!(g.strong_count(), r.strong_count(), "object {id}");
                    allocated.insert(*id);
                }
            }
        }
        assert_eq!(object_count(), base + allocated.len());
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: if cfg!(miri) { 4 } else { 256 },
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn plain_values_match_rc(ops in prop::collection::vec(op(), 0..if cfg!(miri) { 40 } else { 200 })) {
        let base = object_count();
        let mut world = World { strong: Vec::new(), weak: Vec::new(), next_id: 0 };
        for op in &ops {
            world.apply(op);
            world.check(base);
        }
        drop(world);
        assert_eq!(object_count(), base, "everything freed");
    }
}
