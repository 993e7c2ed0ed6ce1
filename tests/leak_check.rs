//! Leak checks for tests (`LeakCheck`): a deliberate leak fails with a
//! report that says what grew and who holds it; the fixed code passes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use rcycle::report::LeakCheck;
use rcycle::{Gc, Trace, WeakGc};

#[derive(Trace)]
struct Iq {
    id: u64,
}

#[derive(Trace)]
struct Dispatcher {
    expected: RefCell<HashMap<u64, Gc<Iq>>>,
}

impl Dispatcher {
    fn send(&self, id: u64) {
        self.expected.borrow_mut().insert(id, Gc::new(Iq { id }));
    }
    /// The bug: the answer is matched, the request never removed.
    fn answer_leaky(&self, id: u64) -> bool {
        self.expected.borrow().contains_key(&id)
    }
    fn answer(&self, id: u64) -> bool {
        self.expected.borrow_mut().remove(&id).is_some()
    }
}

#[derive(Trace)]
struct Node {
    parent: RefCell<Option<Gc<Node>>>,
    children: RefCell<Vec<Gc<Node>>>,
}

#[derive(Trace)]
struct FixedNode {
    parent: RefCell<WeakGc<FixedNode>>,
    children: RefCell<Vec<Gc<FixedNode>>>,
}

fn dispatcher() -> Gc<Dispatcher> {
    Gc::new(Dispatcher {
        expected: RefCell::new(HashMap::new()),
    })
}

#[test]
fn a_map_that_keeps_every_request_fails_the_check() {
    let d = dispatcher();
    let check = LeakCheck::start();
    for id in 1..=3 {
        d.send(id);
        assert!(d.answer_leaky(id));
    }
    let report = check.finish().unwrap_err();
    assert_eq!(report.alive().count(), 3);
    assert_eq!(report.collected(), 0);
    assert!(report.cycles().is_none());
    assert_eq!(
        report.to_string(),
        "Leak check failed.\n\
         \n\
         3 objects made since the check started are still alive (72 bytes):\n  \
         3 leak_check::Iq (72 bytes)\n\
         held by:\n  \
         3 leak_check::Iq (72 bytes) through leak_check::Dispatcher.expected[*]\n"
    );
    assert!(rcycle::is_enabled(), "automatic collection is back on");
}

#[test]
fn the_fixed_dispatcher_passes() {
    let d = dispatcher();
    let check = LeakCheck::start();
    for id in 1..=3 {
        d.send(id);
        assert!(d.answer(id));
    }
    check.assert_no_leaks();
    assert!(rcycle::is_enabled());
}

fn parse(width: usize) -> Gc<Node> {
    let root = Gc::new(Node {
        parent: RefCell::new(None),
        children: RefCell::new(Vec::new()),
    });
    for _ in 0..width {
        let child = Gc::new(Node {
            parent: RefCell::new(Some(root.clone())),
            children: RefCell::new(Vec::new()),
        });
        root.children.borrow_mut().push(child);
    }
    root
}

fn parse_fixed(width: usize) -> Gc<FixedNode> {
    let root = Gc::new(FixedNode {
        parent: RefCell::new(WeakGc::new()),
        children: RefCell::new(Vec::new()),
    });
    for _ in 0..width {
        let child = Gc::new(FixedNode {
            parent: RefCell::new(Gc::downgrade(&root)),
            children: RefCell::new(Vec::new()),
        });
        root.children.borrow_mut().push(child);
    }
    root
}

#[test]
fn parent_child_cycles_fail_with_the_field_to_weaken() {
    let check = LeakCheck::start();
    for _ in 0..4 {
        drop(parse(2));
    }
    let report = check.finish().unwrap_err();
    assert_eq!(report.collected(), 12);
    assert_eq!(report.alive().count(), 0);
    assert_eq!(
        report.to_string(),
        "Leak check failed.\n\
         \n\
         12 objects made since the check started were freed only by the cycle collector \
         (an Rc would leak them):\n\
         12 garbage objects, 896 bytes, on or reachable from 4 cycles.\n  \
         Count     Size Type\n     \
         12      896 leak_check::Node\n\
         4 cycles (12 objects) of leak_check::Node, closed by:\n      \
         8 leak_check::Node.children[_] -> leak_check::Node\n      \
         8 leak_check::Node.parent -> leak_check::Node\n  \
         cycles through leak_check::Node.parent -> leak_check::Node: 12 objects; \
         consider WeakGc for the field 'parent'\n"
    );
}

#[test]
fn weak_parents_pass() {
    let check = LeakCheck::start();
    for _ in 0..4 {
        let tree = parse_fixed(2);
        assert!(tree.children.borrow()[0]
            .parent
            .borrow()
            .upgrade()
            .is_some());
    }
    check.assert_no_leaks();
}

#[test]
fn assert_no_leaks_panics_with_the_report() {
    let check = LeakCheck::start();
    let kept = Gc::new(5u32);
    let payload = catch_unwind(AssertUnwindSafe(|| check.assert_no_leaks())).unwrap_err();
    let message = payload.downcast_ref::<String>().unwrap();
    assert_eq!(
        message,
        "Leak check failed.\n\
         \n\
         1 object made since the check started is still alive (24 bytes):\n  \
         1 u32 (24 bytes)\n\
         held by:\n  \
         1 u32 (24 bytes) through <held outside>\n"
    );
    assert_eq!(*kept, 5);
    assert!(rcycle::is_enabled(), "restored on the unwinding path too");
}

/// Each test thread has its own heap: a leak on one thread does not fail
/// the check on another.
#[test]
fn checks_on_parallel_threads_do_not_see_each_other() {
    let leaky = std::thread::spawn(|| {
        let d = dispatcher();
        let check = LeakCheck::start();
        d.send(1);
        let failed = check.finish().is_err();
        drop(d);
        failed
    });
    let clean = std::thread::spawn(|| {
        let check = LeakCheck::start();
        drop(Gc::new(1u8));
        check.finish().is_ok()
    });
    assert!(leaky.join().unwrap());
    assert!(clean.join().unwrap());
}

/// A check started with automatic collection off leaves it off.
#[test]
fn collection_settings_are_restored() {
    rcycle::disable();
    LeakCheck::start().assert_no_leaks();
    assert!(!rcycle::is_enabled());
    rcycle::enable();
}
