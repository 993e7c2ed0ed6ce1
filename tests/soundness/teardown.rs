//! Thread-local teardown, and `Gc::new_cyclic` whose closure panics.

use super::*;

// ===========================================================================
// thread-local teardown
// ===========================================================================

struct TNode {
    weight: usize,
    counter: Arc<AtomicUsize>,
    events: Arc<Mutex<Vec<&'static str>>>,
    next: RefCell<Option<Gc<TNode>>>,
}

// SAFETY: reports `next` once.
unsafe impl Trace for TNode {
    fn trace(&self, t: &mut Tracer<'_>) {
        t.field("next", &self.next);
    }
}

impl Drop for TNode {
    fn drop(&mut self) {
        // No thread-locals here: this may run during thread teardown.
        self.counter.fetch_add(1, SeqCst);
        if self.weight == 0 {
            self.events.lock().unwrap().push("cycle member dropped");
        }
    }
}

fn tnode(
    weight: usize,
    counter: &Arc<AtomicUsize>,
    events: &Arc<Mutex<Vec<&'static str>>>,
) -> Gc<TNode> {
    Gc::new(TNode {
        weight,
        counter: counter.clone(),
        events: events.clone(),
        next: RefCell::new(None),
    })
}

fn tcycle(counter: &Arc<AtomicUsize>, events: &Arc<Mutex<Vec<&'static str>>>) {
    let a = tnode(0, counter, events);
    let b = tnode(0, counter, events);
    *a.next.borrow_mut() = Some(b.clone());
    *b.next.borrow_mut() = Some(a.clone());
}

/// A thread leaves a garbage cycle behind and exits without collecting: the
/// final collection at thread exit runs its `Drop` impls.
#[test]
fn thread_exit_collects_garbage_cycles() {
    let counter = Arc::new(AtomicUsize::new(0));
    let events = Arc::new(Mutex::new(Vec::new()));
    let (c, e) = (counter.clone(), events.clone());
    std::thread::spawn(move || {
        for _ in 0..3 {
            tcycle(&c, &e);
        }
        assert_eq!(object_count(), 6);
        assert_eq!(c.load(SeqCst), 0);
    })
    .join()
    .unwrap();
    assert_eq!(counter.load(SeqCst), 6);
}

/// Holds `Gc`s in a *user* thread-local that is registered before rcycle's
/// heap exists on the thread, so (thread-local destructors run in reverse
/// order of registration on this platform) it is destroyed after rcycle's
/// own thread-exit collection. Its `Drop` reads, clones, creates and drops
/// `Gc`s and calls `collect()`. Both destruction orders are accepted; the
/// numbers must match the order that happened.
#[test]
fn gc_in_user_thread_local_destroyed_after_rcycle_teardown() {
    struct Holder {
        others: Vec<Gc<TNode>>,
        counter: Arc<AtomicUsize>,
        events: Arc<Mutex<Vec<&'static str>>>,
        observed_weight: Arc<AtomicUsize>,
        nested_freed: Arc<AtomicUsize>,
    }
    // SAFETY: reports each of `others` once.
    unsafe impl Trace for Holder {
        fn trace(&self, t: &mut Tracer<'_>) {
            t.field("others", &self.others);
        }
    }
    impl Drop for Holder {
        fn drop(&mut self) {
            self.events.lock().unwrap().push("holder dropped");
            let total: usize = self.others.iter().map(|o| o.weight).sum();
            self.observed_weight.store(total, SeqCst);
            let extra = self.others[0].clone();
            assert_eq!(Gc::strong_count(&extra), 2);
            drop(extra);
            // Fresh objects after the heap's teardown ran.
            drop(tnode(5, &self.counter, &self.events));
            tcycle(&self.counter, &self.events);
            self.nested_freed.store(collect(), SeqCst);
            self.counter.fetch_add(100, SeqCst);
        }
    }
    thread_local! {
        static USER_SLOT: RefCell<Option<Gc<Holder>>> = const { RefCell::new(None) };
    }

    let counter = Arc::new(AtomicUsize::new(0));
    let events = Arc::new(Mutex::new(Vec::new()));
    let observed = Arc::new(AtomicUsize::new(0));
    let nested = Arc::new(AtomicUsize::new(usize::MAX));
    let (c, e, o, n) = (
        counter.clone(),
        events.clone(),
        observed.clone(),
        nested.clone(),
    );
    std::thread::spawn(move || {
        // Register USER_SLOT's destructor before rcycle touches this thread.
        USER_SLOT.with(|s| assert!(s.borrow().is_none()));
        let holder = Gc::new(Holder {
            others: vec![tnode(3, &c, &e), tnode(4, &c, &e)],
            counter: c.clone(),
            events: e.clone(),
            observed_weight: o,
            nested_freed: n,
        });
        USER_SLOT.with(|s| *s.borrow_mut() = Some(holder));
        // Garbage left for the thread-exit collection.
        tcycle(&c, &e);
    })
    .join()
    .expect("thread teardown must not crash");

    let events = events.lock().unwrap().clone();
    println!("teardown order: {events:?}");
    assert_eq!(observed.load(SeqCst), 7);
    // holder 100 + others 2 + temporary 1 + cycle made in Drop 2 + leftover cycle 2
    assert_eq!(counter.load(SeqCst), 107);
    let holder_at = events.iter().position(|e| *e == "holder dropped").unwrap();
    if holder_at == 2 {
        // rcycle's teardown collected the leftover cycle first; the nested
        // collect() then found only the cycle made inside Drop.
        assert_eq!(nested.load(SeqCst), 2, "{events:?}");
    } else {
        // The user thread-local went first: its collect() found both cycles.
        assert_eq!(holder_at, 0, "{events:?}");
        assert_eq!(nested.load(SeqCst), 4, "{events:?}");
    }
    assert_eq!(events.len(), 5);
}

/// A garbage cycle left for the thread-exit collection, one of whose members
/// logs through a lazily initialised thread-local from its `Drop`. That
/// thread-local is first touched after the heap exists, so it is registered
/// after rcycle's teardown and destroyed before it: `.with` panics in the
/// final collection. The panic is contained (unwinding out of a thread-local
/// destructor would abort the process), the other members are dropped, and
/// the thread joins normally.
#[test]
fn drop_logging_to_a_destroyed_thread_local_does_not_abort() {
    struct Logger {
        lines: Vec<String>,
        events: Option<Arc<Mutex<Vec<&'static str>>>>,
    }
    impl Drop for Logger {
        fn drop(&mut self) {
            if let Some(e) = &self.events {
                e.lock().unwrap().push("logger destroyed");
            }
        }
    }
    thread_local! {
        // Initialised on first use (as a logger's buffer usually is), which
        // registers its destructor then.
        static LOGGER: RefCell<Logger> = RefCell::new(Logger {
            lines: Vec::with_capacity(16),
            events: None,
        });
    }
    struct Member {
        logs: bool,
        started: Arc<AtomicUsize>,
        finished: Arc<AtomicUsize>,
        events: Arc<Mutex<Vec<&'static str>>>,
        next: RefCell<Option<Gc<Member>>>,
    }
    // SAFETY: reports `next` once.
    unsafe impl Trace for Member {
        fn trace(&self, t: &mut Tracer<'_>) {
            t.field("next", &self.next);
        }
    }
    impl Drop for Member {
        fn drop(&mut self) {
            self.started.fetch_add(1, SeqCst);
            self.events.lock().unwrap().push("member dropped");
            if self.logs {
                // Ordinary logging code: panics once LOGGER is destroyed.
                LOGGER.with(|l| l.borrow_mut().lines.push("member dropped".into()));
            }
            self.finished.fetch_add(1, SeqCst);
        }
    }

    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let events = Arc::new(Mutex::new(Vec::new()));
    let (s, f, e) = (started.clone(), finished.clone(), events.clone());
    std::thread::spawn(move || {
        // A 4-cycle whose second member logs; the heap exists before LOGGER.
        let members: Vec<Gc<Member>> = (0..4)
            .map(|i| {
                Gc::new(Member {
                    logs: i == 1,
                    started: s.clone(),
                    finished: f.clone(),
                    events: e.clone(),
                    next: RefCell::new(None),
                })
            })
            .collect();
        for i in 0..4 {
            *members[i].next.borrow_mut() = Some(members[(i + 1) % 4].clone());
        }
        LOGGER.with(|l| {
            let mut l = l.borrow_mut();
            l.events = Some(e.clone());
            l.lines.push("thread started".into());
        });
        drop(members);
        assert_eq!(object_count(), 4);
    })
    .join()
    .expect("the thread exits normally");

    let events = events.lock().unwrap().clone();
    // LOGGER went first, then the final collection dropped every member.
    assert_eq!(
        events,
        [
            "logger destroyed",
            "member dropped",
            "member dropped",
            "member dropped",
            "member dropped"
        ]
    );
    assert_eq!(started.load(SeqCst), 4);
    // All but the one whose log call panicked.
    assert_eq!(finished.load(SeqCst), 3);
}

/// A `Gc` kept in a thread-local registered before the heap (destroyed after
/// rcycle's teardown) holds the only outside handle to a cycle, which becomes
/// garbage only when that thread-local is destroyed: the exited heap collects
/// it at once (every `Drop` runs), with a second cycle hanging off it and a
/// dead box kept by a `WeakGc` in the same thread-local.
#[test]
fn cycle_in_thread_local_destroyed_after_teardown_is_collected() {
    thread_local! {
        static SLOT: RefCell<(Option<Gc<TNode>>, WeakGc<TNode>)> =
            const { RefCell::new((None, WeakGc::new())) };
    }
    let counter = Arc::new(AtomicUsize::new(0));
    let events = Arc::new(Mutex::new(Vec::new()));
    let (c, e) = (counter.clone(), events.clone());
    std::thread::spawn(move || {
        // Registered before rcycle touches this thread: destroyed after its
        // teardown.
        SLOT.with(|s| assert!(s.borrow().0.is_none()));
        let a = tnode(1, &c, &e);
        let b = tnode(1, &c, &e);
        *a.next.borrow_mut() = Some(b.clone());
        *b.next.borrow_mut() = Some(a.clone());
        // A second cycle, reachable only from the first.
        let x = tnode(1, &c, &e);
        let y = tnode(1, &c, &e);
        *x.next.borrow_mut() = Some(y.clone());
        *y.next.borrow_mut() = Some(x.clone());
        // (b.next is taken: hang x off a third node of the first cycle.)
        let z = tnode(1, &c, &e);
        *z.next.borrow_mut() = Some(x.clone());
        *b.next.borrow_mut() = Some(z.clone());
        *z.next.borrow_mut() = Some(a.clone());
        drop((x, y, z));
        // Now a -> b -> z -> a, and the x <-> y cycle is lost (garbage now).
        let w = Gc::downgrade(&b);
        SLOT.with(|s| *s.borrow_mut() = (Some(a), w));
        drop(b);
        // Garbage left for the teardown: the x <-> y cycle.
        assert_eq!(object_count(), 5);
        assert_eq!(c.load(SeqCst), 0);
    })
    .join()
    .expect("the thread exits normally");
    // x and y at teardown; a, b, z when SLOT went.
    assert_eq!(counter.load(SeqCst), 5);
}

/// A thread-local destroyed after rcycle's teardown (which freed the emptied
/// heap) makes a garbage cycle in its `Drop`: the new heap starts in the
/// exited state, so the cycle is collected as soon as its handles are dropped
/// (its members' `Drop` impls run before the thread ends), even though no
/// teardown will run for that heap.
#[test]
fn cycle_made_after_teardown_is_collected() {
    struct MakesCycle {
        counter: Arc<AtomicUsize>,
        events: Arc<Mutex<Vec<&'static str>>>,
        seen: Arc<AtomicUsize>,
    }
    impl Drop for MakesCycle {
        fn drop(&mut self) {
            assert_eq!(object_count(), 0);
            tcycle(&self.counter, &self.events);
            // Collected when the second handle went.
            self.seen.store(self.counter.load(SeqCst), SeqCst);
            assert_eq!(object_count(), 0);
        }
    }
    thread_local! {
        static LATE: RefCell<Option<MakesCycle>> = const { RefCell::new(None) };
    }
    let counter = Arc::new(AtomicUsize::new(0));
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(AtomicUsize::new(usize::MAX));
    let (c, e, s) = (counter.clone(), events.clone(), seen.clone());
    std::thread::spawn(move || {
        // Registered before the heap: destroyed after its teardown.
        LATE.with(|l| {
            *l.borrow_mut() = Some(MakesCycle {
                counter: c.clone(),
                events: e.clone(),
                seen: s,
            })
        });
        drop(tnode(1, &c, &e));
        assert_eq!(c.load(SeqCst), 1);
    })
    .join()
    .expect("the thread exits normally");
    assert_eq!(seen.load(SeqCst), 3);
    assert_eq!(counter.load(SeqCst), 3);
}

/// Values without drop glue (`Gc<u64>`, `Gc<str>`) are freed without a drop
/// loop; held by a thread-local destroyed after rcycle's teardown, they are
/// freed on the exited heap, a weak handle outlives its value there, and
/// the last of them frees the heap (run alone under Miri without
/// `-Zmiri-ignore-leaks`, this test shows that nothing leaks; CI's run of the
/// whole file ignores leaks for the test below, which leaks on purpose).
#[test]
fn plain_values_freed_after_teardown() {
    struct Plain {
        number: Option<Gc<u64>>,
        text: Option<Gc<str>>,
        weak: Option<WeakGc<u64>>,
        seen: Arc<Mutex<Vec<String>>>,
    }
    impl Drop for Plain {
        fn drop(&mut self) {
            let mut seen = self.seen.lock().unwrap();
            let number = self.number.take().unwrap();
            let weak = self.weak.take().unwrap();
            seen.push(format!(
                "{} {} {}",
                *number,
                object_count(),
                weak.strong_count()
            ));
            drop(number);
            seen.push(format!("{:?} {}", weak.upgrade(), object_count()));
            drop(weak);
            let text = self.text.take().unwrap();
            seen.push(format!("{} {}", &*text, object_count()));
            drop(text);
            let fresh: Gc<str> = Gc::from("fresh");
            seen.push(format!("{} {}", &*fresh, object_count()));
            // (Not followed by a query: on a thread whose teardown ran,
            // one would make a new, empty heap that nothing frees.)
            drop(fresh);
        }
    }
    thread_local! {
        static EARLY: RefCell<Option<Plain>> = const { RefCell::new(None) };
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        // Registered before the heap: destroyed after its teardown.
        EARLY.with(|e| assert!(e.borrow().is_none()));
        let number = Gc::new(7u64);
        let weak = Gc::downgrade(&number);
        EARLY.with(|e| {
            *e.borrow_mut() = Some(Plain {
                number: Some(number),
                text: Some(Gc::from("text")),
                weak: Some(weak),
                seen: s,
            })
        });
    })
    .join()
    .expect("the thread exits normally");
    let seen = seen.lock().unwrap().clone();
    // The dead `u64` keeps its memory (and counts as an object) until its
    // weak handle goes.
    assert_eq!(seen, ["7 2 1", "None 2", "text 1", "fresh 1"], "{seen:?}");
}

/// Queries and settings from a thread-local destroyed after rcycle's
/// teardown (which freed the thread's heap): the queries read the defaults
/// without making a heap, and a heap made by a setting goes at once, as it
/// holds no object (run alone under Miri without `-Zmiri-ignore-leaks`, this
/// test shows that nothing leaks).
#[test]
fn queries_after_teardown_make_no_heap() {
    struct Late(Arc<Mutex<Vec<String>>>);
    impl Drop for Late {
        fn drop(&mut self) {
            let mut seen = self.0.lock().unwrap();
            seen.push(format!(
                "{} {} {} {}",
                object_count(),
                candidate_count(),
                rcycle::threshold(),
                rcycle::is_enabled()
            ));
            rcycle::set_threshold(5);
            rcycle::disable();
            rcycle::enable();
            // The settings went with the empty heap they made.
            seen.push(format!("{} {}", object_count(), rcycle::threshold()));
        }
    }
    thread_local! {
        static LATE: RefCell<Option<Late>> = const { RefCell::new(None) };
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    std::thread::spawn(move || {
        // Registered before the heap: destroyed after its teardown.
        LATE.with(|l| *l.borrow_mut() = Some(Late(s)));
        drop(Gc::new(1u8));
    })
    .join()
    .expect("the thread exits normally");
    assert_eq!(*seen.lock().unwrap(), ["0 0 10000 true", "0 10000"]);
}

/// A `Drop` that makes a new garbage cycle every time it runs: the teardown
/// runs a bounded number of collections (8, `FINAL_COLLECTIONS` in
/// src/heap.rs), one generation each, and the thread exits; the last
/// generation made is left (leaked, never dropped).
#[test]
fn teardown_of_self_renewing_garbage_is_bounded() {
    struct Gen {
        renews: bool,
        dropped: Arc<AtomicUsize>,
        next: RefCell<Option<Gc<Gen>>>,
    }
    // SAFETY: reports `next` once.
    unsafe impl Trace for Gen {
        fn trace(&self, t: &mut Tracer<'_>) {
            t.field("next", &self.next);
        }
    }
    impl Drop for Gen {
        fn drop(&mut self) {
            self.dropped.fetch_add(1, SeqCst);
            if self.renews {
                generation(&self.dropped);
            }
        }
    }
    /// A garbage 2-cycle of which one member renews.
    fn generation(dropped: &Arc<AtomicUsize>) {
        let a = Gc::new(Gen {
            renews: true,
            dropped: dropped.clone(),
            next: RefCell::new(None),
        });
        let b = Gc::new(Gen {
            renews: false,
            dropped: dropped.clone(),
            next: RefCell::new(Some(a.clone())),
        });
        *a.next.borrow_mut() = Some(b);
    }

    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    std::thread::spawn(move || {
        generation(&d);
        assert_eq!(collect(), 2); // a collection frees one generation...
        assert_eq!(d.load(SeqCst), 2);
        assert_eq!(object_count(), 2); // ...and its Drop made the next
    })
    .join()
    .expect("the thread exits");
    // One generation in the thread, 8 at its exit: 9 generations of 2.
    assert_eq!(dropped.load(SeqCst), 2 * (1 + 8));
}

// ===========================================================================
// Gc::new_cyclic whose closure panics
// ===========================================================================

#[test]
fn new_cyclic_panicking_closure() {
    let base = baseline();
    fn upgrade_parent(n: &Node) {
        let up = n.weak.borrow().upgrade().is_some();
        log(format!(
            "{} upgrade parent: {}",
            n.name,
            if up { "some" } else { "none" }
        ));
    }
    let msg = expect_panic(|| {
        Gc::new_cyclic(|w: &WeakGc<Node>| -> Node {
            assert!(w.upgrade().is_none());
            assert_eq!(w.strong_count(), 0);
            WEAK_STASH.with(|s| s.borrow_mut().push(w.clone()));
            // A child with a weak handle to the object being built, dropped
            // while unwinding.
            let child = node("child", upgrade_parent);
            *child.weak.borrow_mut() = w.clone();
            let _child = child;
            panic!("cyclic boom");
        })
    });
    assert_eq!(msg, "cyclic boom");
    assert_eq!(take_log(), ["drop child", "child upgrade parent: none"]);
    let w = WEAK_STASH.with(|s| s.borrow_mut().pop().unwrap());
    assert!(w.upgrade().is_none());
    assert_eq!((w.strong_count(), w.weak_count()), (0, 0));
    // Only the never-initialized object, held by the stashed weak handle.
    assert_eq!(object_count(), base + 1);
    assert_eq!(collect(), 0);
    drop(w);
    assert_eq!(object_count(), base);
    assert_eq!(take_log(), Vec::<String>::new());

    // Without a stashed weak handle nothing at all is left.
    let msg =
        expect_panic(|| Gc::new_cyclic(|_w: &WeakGc<Node>| -> Node { panic!("cyclic boom 2") }));
    assert_eq!(msg, "cyclic boom 2");
    assert_eq!(object_count(), base);

    // And a successful one still works afterwards.
    let ok = Gc::new_cyclic(|w: &WeakGc<Node>| Node {
        name: "ok",
        next: RefCell::new(None),
        extra: RefCell::new(Vec::new()),
        weak: RefCell::new(w.clone()),
        on_drop: noop,
    });
    assert!(Gc::ptr_eq(&ok.weak.borrow().upgrade().unwrap(), &ok));
    drop(ok);
    assert_eq!(take_log(), ["drop ok"]);
    assert_eq!(object_count(), base);
}
