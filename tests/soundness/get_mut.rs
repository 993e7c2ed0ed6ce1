//! `Gc::get_mut` lends the value out through a `GcMut` guard: while the
//! guard lives, the heap neither reads the value nor hands out a handle to
//! it (issue 19, section 1). Each test is one of the issue's repros; without
//! the guard, ASan and Miri report a use-after-free or an aliasing violation
//! in each.

use super::*;
use rcycle::candidate_count;
use rcycle::report::{count, objects, CollectorCounters};

/// The issue's repro: a second handle from the heap's own listing, then the
/// buffer reallocated through the `&mut`.
#[test]
fn objects_cannot_alias_a_value_lent_out() {
    let base = baseline();
    let mut g = Gc::new(vec![1u64, 2, 3]);
    {
        let mut m = Gc::get_mut(&mut g).unwrap();
        assert!(objects::<Vec<u64>>().is_empty(), "no handle while lent out");
        assert_eq!(count::<Vec<u64>>(), 1, "still counted");
        m.extend(0..10_000u64); // reallocates the vector's buffer
        assert_eq!(m.len(), 10_003);
    }
    let found = objects::<Vec<u64>>();
    assert_eq!(found.len(), 1);
    let alias = found[0].upgrade().unwrap();
    assert!(Gc::ptr_eq(&alias, &g));
    assert_eq!(alias[..5], [1, 2, 3, 0, 1]);
    assert_eq!(alias.len(), 10_003);
    drop(alias);
    assert!(Gc::get_mut(&mut g).is_none(), "a weak handle exists");
    drop(found);
    assert!(Gc::get_mut(&mut g).is_some());
    drop(g);
    assert_eq!(object_count(), base);
}

/// A guard that is leaked keeps the value lent out, as a leaked `RefMut`
/// keeps its `RefCell` borrowed: safe, and the owner still reads it.
#[test]
fn a_leaked_guard_keeps_the_value_lent_out() {
    let base = baseline();
    let mut g = Gc::new(String::from("x"));
    std::mem::forget(Gc::get_mut(&mut g).unwrap());
    assert_eq!(*g, "x");
    assert!(objects::<String>().is_empty());
    let w = Gc::downgrade(&g);
    assert!(w.upgrade().is_none());
    assert_eq!(w.strong_count(), 0);
    drop(w);
    // A new guard's drop ends the loan.
    Gc::get_mut(&mut g).unwrap().push('y');
    assert_eq!(objects::<String>().len(), 1);
    assert_eq!(*objects::<String>()[0].upgrade().unwrap(), "xy");
    drop(g);
    assert_eq!(object_count(), base);
}

/// A buffered candidate lent out while a collection runs: the collector does
/// not read the value, counts the object as held from outside, and frees
/// nothing the value points to, even what looks unreferenced otherwise.
#[test]
fn a_collection_while_a_candidate_is_lent_out() {
    let base = baseline();
    let mut a: Gc<Vec<Gc<Node>>> = Gc::new(Vec::new());
    drop(a.clone()); // `a` is a candidate now
    assert_eq!(candidate_count(), 1);
    {
        let mut v = Gc::get_mut(&mut a).unwrap();
        let (b, c) = pair(noop, noop);
        v.push(b);
        drop(c); // b <-> c, held by the lent-out value only
        assert_eq!(candidate_count(), 2);
        assert_eq!(collect(), 0);
        assert_eq!(candidate_count(), 0);
        assert!(take_log().is_empty());
        v.pop(); // the cycle is garbage now
    }
    assert_eq!(collect(), 2);
    assert_eq!(sorted(take_log()), ["drop a", "drop b"]);
    drop(a);
    assert_eq!(object_count(), base);
}

/// A plain push loop through `get_mut` on a buffered candidate makes the
/// heap grow past its growth limit: the collection that starts in the middle
/// of the loop leaves the lent-out value alone.
#[test]
fn the_growth_collection_inside_a_push_loop() {
    let base = baseline();
    let n: u64 = if cfg!(miri) { 9_000 } else { 50_000 };
    let mut a: Gc<Vec<Gc<u64>>> = Gc::new(Vec::new());
    drop(a.clone());
    let before = CollectorCounters::read().collections;
    {
        let mut v = Gc::get_mut(&mut a).unwrap();
        for i in 0..n {
            v.push(Gc::new(i));
        }
    }
    assert!(
        CollectorCounters::read().collections > before,
        "the growth trigger collected during the loop"
    );
    assert_eq!(a.len(), n as usize);
    assert_eq!(a.iter().map(|g| **g).sum::<u64>(), n * (n - 1) / 2);
    assert_eq!(object_count(), base + 1 + n as usize);
    drop(a);
    assert_eq!(object_count(), base);
}

/// `Vec::dedup_by` drops the duplicates it removes before it closes the gap:
/// a collection started from its closure (with the vector's object a
/// buffered candidate) must not trace the half-updated vector.
#[test]
fn a_collection_inside_dedup_by() {
    let base = baseline();
    let mut a: Gc<Vec<Gc<Node>>> = Gc::new((0..4).map(|_| node("d", noop)).collect());
    drop(a.clone());
    assert_eq!(candidate_count(), 1);
    let mut calls = 0;
    Gc::get_mut(&mut a).unwrap().dedup_by(|x, y| {
        calls += 1;
        if calls == 2 {
            // The second element has been dropped (and freed) by now.
            assert_eq!(take_log(), ["drop d"]);
            assert_eq!(collect(), 0);
            assert_eq!(candidate_count(), 0);
        }
        x.name == y.name
    });
    assert_eq!(calls, 3);
    assert_eq!(take_log(), ["drop d", "drop d"]);
    assert_eq!(a.len(), 1);
    assert_eq!(object_count(), base + 2);
    drop(a);
    assert_eq!(take_log(), ["drop d"]);
    assert_eq!(object_count(), base);
}

/// Reports while a value is lent out: the object is listed, with its own
/// size only, and as holding what it holds from outside.
#[test]
fn reports_skip_a_value_lent_out() {
    let base = baseline();
    let mut g = Gc::new(vec![node("r", noop)]);
    let lent_size;
    let id = rcycle::report::ObjectId::of(&g);
    {
        let _m = Gc::get_mut(&mut g).unwrap();
        let graph = rcycle::report::HeapGraph::capture();
        let me = graph.find(id).unwrap();
        let info = &graph.objects()[me];
        assert!(info.untraceable && !info.dead);
        assert_eq!(graph.referents(me).count(), 0);
        let row = vec_row();
        assert_eq!(row.count, 1);
        // The object alone: its value (and so its buffer) is not measured.
        assert_eq!(row.size, info.size);
        lent_size = row.size;
    }
    let row = vec_row();
    // Measured again: the buffer of one handle.
    assert_eq!(g.capacity(), 1);
    assert_eq!(row.size, lent_size + std::mem::size_of::<Gc<Node>>());
    drop(g);
    assert_eq!(take_log(), ["drop r"]);
    assert_eq!(object_count(), base);
}

/// The live report's row of the one `Vec` object.
fn vec_row() -> rcycle::report::ReportRow {
    rcycle::live_report()
        .rows()
        .iter()
        .find(|r| r.kind.starts_with("alloc::vec::Vec<"))
        .unwrap()
        .clone()
}
