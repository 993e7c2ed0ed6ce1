//! Panics in `Trace`, `Drop` and finalizers during a collection.

use super::*;

// ===========================================================================
// panic in Trace
// ===========================================================================

thread_local! {
    static TRACE_PANICS: Cell<bool> = const { Cell::new(false) };
}

/// A node whose `Trace` panics while `TRACE_PANICS` is set; its finalizer
/// can arm that flag (to make the recount after finalization panic).
struct PNode {
    name: &'static str,
    next: RefCell<Option<Gc<PNode>>>,
    arm_in_finalize: bool,
}

// SAFETY: reports `next` once (or panics before reporting anything).
unsafe impl Trace for PNode {
    fn trace(&self, t: &mut Tracer<'_>) {
        if TRACE_PANICS.get() {
            panic!("trace panic in {}", self.name);
        }
        t.field("next", &self.next);
    }
    fn has_finalizer() -> bool {
        true
    }
    fn finalize(&self) {
        log(format!("finalize {}", self.name));
        if self.arm_in_finalize {
            TRACE_PANICS.set(true);
        }
    }
}

impl Drop for PNode {
    fn drop(&mut self) {
        log(format!("drop {}", self.name));
    }
}

fn ppair(arm_a: bool) -> (Gc<PNode>, Gc<PNode>) {
    let a = Gc::new(PNode {
        name: "a",
        next: RefCell::new(None),
        arm_in_finalize: arm_a,
    });
    let b = Gc::new(PNode {
        name: "b",
        next: RefCell::new(Some(a.clone())),
        arm_in_finalize: false,
    });
    *a.next.borrow_mut() = Some(b.clone());
    (a, b)
}

#[test]
fn panic_in_trace_during_marking_leaves_heap_consistent() {
    let base = baseline();
    let (a, b) = ppair(false);
    let keep = a.clone(); // an outside handle, dropped later
    let (wa, wb) = (Gc::downgrade(&a), Gc::downgrade(&b));
    drop((a, b));
    assert_eq!(candidate_count(), 2); // a (3 -> 2) and b (2 -> 1)
    assert_eq!(collect(), 0); // a is still held by `keep`
    drop(keep);
    assert_eq!(candidate_count(), 1); // a

    TRACE_PANICS.set(true);
    let msg = expect_panic(collect);
    assert!(msg.starts_with("trace panic in "), "{msg}");
    TRACE_PANICS.set(false);

    // Nothing changed: counts, handles, values, the candidate.
    assert_eq!(candidate_count(), 1); // a, put back
    assert_eq!(take_log(), Vec::<String>::new());
    assert_eq!((wa.strong_count(), wb.strong_count()), (1, 1));
    assert_eq!((wa.weak_count(), wb.weak_count()), (1, 1));
    assert_eq!(
        wa.upgrade().unwrap().next.borrow().as_ref().unwrap().name,
        "b"
    );
    assert_eq!(candidate_count(), 1); // a, after the upgrade/drop above
    assert_eq!(object_count(), base + 2);

    assert_eq!(collect(), 2);
    assert_eq!(
        sorted(take_log()),
        ["drop a", "drop b", "finalize a", "finalize b"]
    );
    assert_eq!(object_count(), base + 2); // wa, wb
    drop((wa, wb));
    assert_eq!(object_count(), base);
}

/// A finalizer makes `Trace` panic during the recount that follows
/// finalization. The panic propagates; the objects survive that collection
/// (values intact, counts unchanged) and a later collection frees exactly the
/// cycle, without running the finalizers again.
#[test]
fn panic_in_trace_during_recount_after_finalizers() {
    let base = baseline();
    let (a, b) = ppair(true);
    let (wa, wb) = (Gc::downgrade(&a), Gc::downgrade(&b));
    drop((a, b));
    let msg = expect_panic(collect);
    TRACE_PANICS.set(false);
    assert!(msg.starts_with("trace panic in "), "{msg}");
    assert_eq!(sorted(take_log()), ["finalize a", "finalize b"]);
    assert_eq!((wa.strong_count(), wb.strong_count()), (1, 1));
    // (No upgrade here: dropping the upgraded handle would put b back in
    // the candidate buffer and hide what this test looks for.)
    assert_eq!(object_count(), base + 2);

    assert_eq!(
        collect(),
        2,
        "the cycle must not be lost after a panic in Trace"
    );
    assert_eq!(sorted(take_log()), ["drop a", "drop b"]);
    drop((wa, wb));
    assert_eq!(object_count(), base);
}

thread_local! {
    /// Traces of `CNode` left before one panics (`None`: never).
    static TRACES_LEFT: Cell<Option<usize>> = const { Cell::new(None) };
}

/// A node whose `Trace` panics once `TRACES_LEFT` runs out.
struct CNode {
    name: &'static str,
    edges: RefCell<Vec<Gc<CNode>>>,
}

// SAFETY: reports `edges` (or panics before reporting anything).
unsafe impl Trace for CNode {
    fn trace(&self, t: &mut Tracer<'_>) {
        if let Some(left) = TRACES_LEFT.get() {
            if left == 0 {
                TRACES_LEFT.set(None);
                panic!("trace panic in {}", self.name);
            }
            TRACES_LEFT.set(Some(left - 1));
        }
        t.field("edges", &self.edges);
    }
}

impl Drop for CNode {
    fn drop(&mut self) {
        log(format!("drop {}", self.name));
    }
}

fn cnode(name: &'static str) -> Gc<CNode> {
    Gc::new(CNode {
        name,
        edges: RefCell::new(Vec::new()),
    })
}

/// Five roots: two garbage pairs, `a <-> b` and `d <-> e`, and `c`, held
/// from outside, which points to `a`. Marking traces the five; the sixth
/// trace, the scan's (whichever of its two walks runs), panics. Every root
/// must go back in the candidate buffer with the heap as it was, so that
/// the next collections free exactly the garbage.
#[test]
fn panic_in_trace_during_the_scan_puts_every_root_back() {
    roots_back_after_a_panic_in_the_scan(0);
}

/// The same with 20,000 more candidates, held from outside: above 16,384
/// candidates (64 under Miri) the collector takes the buffer's own vector as
/// its table.
#[test]
fn panic_in_trace_with_a_big_buffer_puts_every_root_back() {
    roots_back_after_a_panic_in_the_scan(if cfg!(miri) { 100 } else { 20_000 });
}

fn roots_back_after_a_panic_in_the_scan(extra: usize) {
    let base = baseline();
    // (No automatic collection while the candidates pile up.)
    rcycle::disable();
    // Live candidates, traced by the marking before the five.
    let held: Vec<Gc<CNode>> = (0..extra).map(|_| cnode("x")).collect();
    for x in &held {
        drop(x.clone());
    }
    let (a, b, c, d, e) = (cnode("a"), cnode("b"), cnode("c"), cnode("d"), cnode("e"));
    a.edges.borrow_mut().push(b.clone());
    b.edges.borrow_mut().push(a.clone());
    c.edges.borrow_mut().push(a.clone());
    d.edges.borrow_mut().push(e.clone());
    e.edges.borrow_mut().push(d.clone());
    drop(c.clone()); // c becomes a candidate too
    let wc = Gc::downgrade(&c);
    drop((a, b, d, e));
    assert_eq!(candidate_count(), extra + 5);

    TRACES_LEFT.set(Some(extra + 5));
    let msg = expect_panic(collect);
    // The walk from the nodes held from outside traces `c` or an `x` first;
    // the walk over the suspects, `a` (debug builds take turns with the
    // two).
    assert!(
        ["trace panic in c", "trace panic in x", "trace panic in a"].contains(&msg.as_str()),
        "{msg}"
    );
    assert_eq!(TRACES_LEFT.get(), None, "the panic came from the scan");
    assert_eq!(
        candidate_count(),
        extra + 5,
        "every root is back in the buffer"
    );
    assert_eq!(take_log(), Vec::<String>::new());
    assert_eq!(object_count(), base + extra + 5);
    assert_eq!(c.edges.borrow()[0].name, "a");

    // Only `d <-> e` is garbage while `c` holds `a`.
    assert_eq!(collect(), 2);
    assert_eq!(sorted(take_log()), ["drop d", "drop e"]);
    assert_eq!(candidate_count(), 0);
    drop(held);
    assert_eq!(take_log().len(), extra);
    drop(c);
    assert_eq!(take_log(), ["drop c"]);
    assert_eq!(wc.strong_count(), 0);
    assert_eq!(collect(), 2);
    assert_eq!(sorted(take_log()), ["drop a", "drop b"]);
    drop(wc);
    assert_eq!(object_count(), base);
    rcycle::enable();
}

// ===========================================================================
// panic in Drop / finalize during collection
// ===========================================================================

fn boom(n: &Node) {
    panic!("boom in {}", n.name);
}

fn ring3(on_drop: [fn(&Node); 3]) -> [Gc<Node>; 3] {
    let a = node("a", on_drop[0]);
    let b = node("b", on_drop[1]);
    let c = node("c", on_drop[2]);
    link(&a, &b);
    link(&b, &c);
    link(&c, &a);
    [a, b, c]
}

/// One member's `Drop` panics: the collection finishes (every other `Drop`
/// runs exactly once, all memory is freed), then re-raises the panic.
#[test]
fn panic_in_drop_during_collection() {
    let base = baseline();
    let ring = ring3([noop, boom, noop]);
    drop(ring);
    let msg = expect_panic(collect);
    assert_eq!(msg, "boom in b");
    assert_eq!(sorted(take_log()), ["drop a", "drop b", "drop c"]);
    // Reclaimed by the panicking collection itself.
    assert_eq!(object_count(), base);
    assert_eq!(collect(), 0);
    assert_eq!(take_log(), Vec::<String>::new());
    assert_eq!(object_count(), base);
}

/// Two members panic: the first panic (in drop order) is re-raised, the
/// other is swallowed, and everything is still freed.
#[test]
fn two_panics_in_drop_during_collection() {
    let base = baseline();
    let ring = ring3([boom, boom, noop]);
    drop(ring);
    let msg = expect_panic(collect);
    let got = take_log();
    assert_eq!(sorted(got.clone()), ["drop a", "drop b", "drop c"]);
    let first_panicker = got.iter().find(|s| *s != "drop c").unwrap();
    assert_eq!(msg, format!("boom in {}", &first_panicker["drop ".len()..]));
    assert_eq!(object_count(), base);
    assert_eq!(collect(), 0);
}

/// A finalizer panics: the collection still frees the cycle, then re-raises.
#[test]
fn panic_in_finalize_during_collection() {
    let base = baseline();
    fn fboom(n: &FNode) {
        panic!("finalize boom in {}", n.name);
    }
    let a = fnode("a", fboom);
    let b = fnode("b", fnoop);
    flink(&a, &b);
    flink(&b, &a);
    drop((a, b));
    let msg = expect_panic(collect);
    assert_eq!(msg, "finalize boom in a");
    assert_eq!(
        sorted(take_log()),
        ["drop a", "drop b", "finalize a", "finalize b"]
    );
    assert_eq!(object_count(), base);
    assert_eq!(collect(), 0);
}

thread_local! {
    static CHAIN_DROPS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

struct ChainNode {
    index: u32,
    panic_at: u32,
    next: Option<Gc<ChainNode>>,
}

// SAFETY: reports `next` once.
unsafe impl Trace for ChainNode {
    fn trace(&self, t: &mut Tracer<'_>) {
        t.field("next", &self.next);
    }
}

impl Drop for ChainNode {
    fn drop(&mut self) {
        CHAIN_DROPS.with(|d| d.borrow_mut().push(self.index));
        if self.index == self.panic_at {
            panic!("chain boom at {}", self.index);
        }
    }
}

/// Plain refcount freeing of a long chain where one `Drop` panics.
///
/// What happens: nodes `0..K` are dropped and freed in order (each nested in
/// the previous one's drop, 32 KiB of stack at a time); node `K`'s `Drop`
/// panics. Its fields are still dropped by the drop glue while unwinding, so
/// node `K + 1` reaches count zero and is *queued* (value intact: no `Drop`
/// runs during the unwinding) for the drop loop, which is unwinding: the
/// panic reaches the caller with `K + 1 .. N` still allocated. Node `K`'s
/// memory is freed as the unwinding leaves its drop, and so is that of every
/// node whose drop the unwinding leaves. The queued rest is dropped, in
/// order, by the next drop loop on this thread (here: dropping an unrelated
/// `Gc`). No `Drop` runs twice, and nothing leaks.
#[test]
fn panic_in_drop_while_freeing_a_long_chain() {
    const N: u32 = if cfg!(miri) { 1_000 } else { 100_000 };
    const K: u32 = N / 5 * 2;
    let base = baseline();
    let mut head: Option<Gc<ChainNode>> = None;
    for index in (0..N).rev() {
        head = Some(Gc::new(ChainNode {
            index,
            panic_at: K,
            next: head.take(),
        }));
    }
    assert_eq!(object_count(), base + N as usize);
    let msg = expect_panic(move || drop(head));
    assert_eq!(msg, format!("chain boom at {K}"));
    let drops = CHAIN_DROPS.with(|d| std::mem::take(&mut *d.borrow_mut()));
    assert_eq!(drops, (0..=K).collect::<Vec<_>>());
    // K+1..N (queued).
    assert_eq!(object_count(), base + (N - K - 1) as usize);

    // Any later drop loop drains the queue.
    drop(Gc::new(0u8));
    let drops = CHAIN_DROPS.with(|d| std::mem::take(&mut *d.borrow_mut()));
    assert_eq!(drops, (K + 1..N).collect::<Vec<_>>());
    assert_eq!(object_count(), base, "nothing leaks");
    assert_eq!(collect(), 0);
    assert_eq!(object_count(), base);
}
