//! Deep structures on the main thread's default stack (8 MiB): dropping a
//! 10,000,000-long `Gc` linked list, collecting a 10,000,000-node ring, and
//! collecting a 1,000,000-node doubly-linked ring. Any recursion proportional
//! to the length would overflow the stack and abort the process. And on a
//! thread with a 128 KiB stack: dropping a 1,000,000-long list, whose drops
//! nest only while they have used less than 32 KiB of stack, and a
//! 100,000-long one whose `Drop` impls take 4 KiB of stack each.
//!
//! This is a `harness = false` test (see `Cargo.toml`): libtest would run it
//! on a spawned thread with a 2 MiB stack (unless `RUST_MIN_STACK` is set);
//! here `main` runs everything on the main thread itself. Under Miri the
//! sizes shrink to 1,000.

use std::cell::{Cell, RefCell};
use std::time::Instant;

use rcycle::{collect, object_count, Gc, Trace, Tracer};

thread_local! {
    static DROPS: Cell<usize> = const { Cell::new(0) };
}

fn count_drop() {
    DROPS.set(DROPS.get() + 1);
}

fn take_drops() -> usize {
    DROPS.replace(0)
}

/// A singly-linked list node: freed by counts alone, no cycle.
struct Link {
    next: Option<Gc<Link>>,
}

// SAFETY: reports `next` once.
unsafe impl Trace for Link {
    fn trace(&self, t: &mut Tracer<'_>) {
        t.field("next", &self.next);
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        count_drop();
    }
}

/// A ring member.
struct Ring {
    next: RefCell<Option<Gc<Ring>>>,
}

// SAFETY: reports `next` once.
unsafe impl Trace for Ring {
    fn trace(&self, t: &mut Tracer<'_>) {
        t.field("next", &self.next);
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        count_drop();
    }
}

/// A doubly-linked ring member: every pair of neighbours is a 2-cycle.
struct DNode {
    prev: RefCell<Option<Gc<DNode>>>,
    next: RefCell<Option<Gc<DNode>>>,
}

// SAFETY: reports `prev` and `next` once each.
unsafe impl Trace for DNode {
    fn trace(&self, t: &mut Tracer<'_>) {
        t.field("prev", &self.prev);
        t.field("next", &self.next);
    }
}

impl Drop for DNode {
    fn drop(&mut self) {
        count_drop();
    }
}

fn drop_long_list(n: usize) {
    let base = object_count();
    let start = Instant::now();
    let mut head: Option<Gc<Link>> = None;
    for _ in 0..n {
        head = Some(Gc::new(Link { next: head.take() }));
    }
    let built = start.elapsed();
    assert_eq!(object_count(), base + n);
    let start = Instant::now();
    drop(head);
    let dropped = start.elapsed();
    assert_eq!(take_drops(), n, "every Drop ran exactly once");
    assert_eq!(object_count(), base);
    println!("list of {n}: built in {built:?}, dropped in {dropped:?}");
}

/// A list node whose `Drop` uses 4 KiB of stack: the nested drops stop at
/// their budget in bytes, not at a depth, so big user frames count.
struct BigFrame {
    next: Option<Gc<BigFrame>>,
}

// SAFETY: reports `next` once.
unsafe impl Trace for BigFrame {
    fn trace(&self, t: &mut Tracer<'_>) {
        t.field("next", &self.next);
    }
}

impl Drop for BigFrame {
    fn drop(&mut self) {
        let scratch = std::hint::black_box([0u8; 4096]);
        std::hint::black_box(&scratch);
        count_drop();
    }
}

fn drop_list_with_big_frames(n: usize) {
    let base = object_count();
    let mut head: Option<Gc<BigFrame>> = None;
    for _ in 0..n {
        head = Some(Gc::new(BigFrame { next: head.take() }));
    }
    drop(head);
    assert_eq!(take_drops(), n, "every Drop ran exactly once");
    assert_eq!(object_count(), base);
    println!("list of {n} with 4 KiB Drop frames: dropped");
}

fn collect_long_ring(n: usize) {
    let base = object_count();
    let start = Instant::now();
    let first = Gc::new(Ring {
        next: RefCell::new(None),
    });
    let mut last = first.clone();
    for _ in 1..n {
        last = Gc::new(Ring {
            next: RefCell::new(Some(last)),
        });
    }
    // Close the ring: first -> last -> ... -> second -> first.
    *first.next.borrow_mut() = Some(last);
    let built = start.elapsed();
    assert_eq!(object_count(), base + n);
    drop(first); // 2 -> 1: the only candidate
    assert_eq!(rcycle::candidate_count(), 1);
    assert_eq!(take_drops(), 0);
    let start = Instant::now();
    let freed = collect();
    let collected = start.elapsed();
    assert_eq!(freed, n);
    assert_eq!(take_drops(), n, "every Drop ran exactly once");
    assert_eq!(object_count(), base);
    assert_eq!(collect(), 0);
    println!("ring of {n}: built in {built:?}, collected in {collected:?}");
}

fn collect_doubly_linked_ring(n: usize) {
    let base = object_count();
    let start = Instant::now();
    // Automatic collections may run while building (the buffer fills with
    // candidates); they find nothing to free, since everything is reachable
    // from `first` and `last`.
    let first = Gc::new(DNode {
        prev: RefCell::new(None),
        next: RefCell::new(None),
    });
    let mut last = first.clone();
    for _ in 1..n {
        let node = Gc::new(DNode {
            prev: RefCell::new(Some(last.clone())),
            next: RefCell::new(None),
        });
        *last.next.borrow_mut() = Some(node.clone());
        last = node;
    }
    *last.next.borrow_mut() = Some(first.clone());
    *first.prev.borrow_mut() = Some(last.clone());
    let built = start.elapsed();
    assert_eq!(take_drops(), 0);
    assert_eq!(object_count(), base + n);
    // No automatic collection from here on, so that the explicit one below is
    // the one that frees the ring (and its count is exact).
    rcycle::disable();
    drop(first);
    drop(last);
    let start = Instant::now();
    let freed = collect();
    let collected = start.elapsed();
    rcycle::enable();
    assert_eq!(freed, n);
    assert_eq!(take_drops(), n, "every Drop ran exactly once");
    assert_eq!(object_count(), base);
    assert_eq!(collect(), 0);
    println!("doubly-linked ring of {n}: built in {built:?}, collected in {collected:?}");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        println!("stack_depth: test");
        return;
    }
    assert_eq!(
        std::thread::current().name(),
        Some("main"),
        "must run on the main thread"
    );
    let (long, doubly) = if cfg!(miri) {
        (1_000, 1_000)
    } else {
        (10_000_000, 1_000_000)
    };
    collect();
    let base = object_count();
    let start = Instant::now();
    drop_long_list(long);
    // A small stack: the nested drops stop at their budget and queue,
    // whatever the frames' sizes.
    std::thread::Builder::new()
        .stack_size(128 * 1024)
        .spawn(move || {
            drop_long_list(long / 10);
            drop_list_with_big_frames(long / 100);
        })
        .unwrap()
        .join()
        .unwrap();
    collect_long_ring(long);
    collect_doubly_linked_ring(doubly);
    assert_eq!(object_count(), base);
    println!("stack_depth: ok ({:?} in total)", start.elapsed());
}
