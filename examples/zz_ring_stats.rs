use rcycle::{Gc, Trace};
use std::cell::RefCell;
use std::time::Instant;
#[derive(Trace)]
struct R { next: RefCell<Option<Gc<R>>>, prev: RefCell<Option<Gc<R>>> }
fn main() {
    let n: usize = std::env::args().nth(1).map(|s| s.parse().unwrap()).unwrap_or(1_000_000);
    let log = std::rc::Rc::new(RefCell::new(Vec::new()));
    let l2 = log.clone();
    rcycle::add_collect_callback(move |phase, s| { if phase == rcycle::CollectPhase::Stop { l2.borrow_mut().push((s.roots, s.examined, s.freed, s.duration)); } });
    for round in 0..3 {
        log.borrow_mut().clear();
        let t = Instant::now();
        let head = Gc::new(R { next: RefCell::new(None), prev: RefCell::new(None) });
        let mut last = head.clone();
        for _ in 1..n {
            let node = Gc::new(R { next: RefCell::new(None), prev: RefCell::new(Some(last.clone())) });
            *last.next.borrow_mut() = Some(node.clone());
            last = node;
        }
        *last.next.borrow_mut() = Some(head.clone());
        *head.prev.borrow_mut() = Some(last);
        let b = t.elapsed();
        drop(head);
        let t = Instant::now();
        rcycle::collect();
        let c = t.elapsed();
        println!("round {round}: build {b:?} collect {c:?}");
        for e in log.borrow().iter() { println!("   roots {} examined {} freed {} {:?}", e.0, e.1, e.2, e.3); }
    }
}
