//! Floors and policy costs (issue 23): what the cycle workloads that miss
//! "1.5x `Rc`" would cost with the least work any collector must do, timed
//! beside `Rc` and rcycle in the same rounds.
//!
//! - [`idle_floor`]: `idle_collect`, live nodes touched and collected;
//! - [`stress_floor`]: `stress_graph`, a random graph cut 1,024 nodes at a
//!   time with a collection after each cut;
//! - [`ring_policy`]: the 1M ring with automatic collection on and off
//!   during its build;
//! - [`churn_floor`]: `churn`, random operations on 50 roots, against its
//!   fastest peer (gcmodule) and the operations alone.
//!
//! The argument for a floor: a collector that finds cycles from candidates
//! (objects whose count dropped to a non-zero value; Rust has no root set
//! to mark from) can only show a candidate alive by reading every object
//! the candidate reaches, and every edge between them, at least once. The
//! "one pass" rows time exactly that read (a breadth-first walk with a mark
//! in each node, nothing else) over the same graph, built from the same
//! seed; `Rc`'s workload plus that pass is the floor.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use rcycle::{Gc, Trace};

use super::{median, timed};

/// A node of `idle_collect` and `churn`: its edges in a `RefCell<Vec<_>>`,
/// for rcycle (`G`) and `Rc` (`R`).
#[derive(Trace)]
struct G {
    refs: RefCell<Vec<Gc<G>>>,
}

/// See [`G`].
struct R {
    refs: RefCell<Vec<Rc<R>>>,
}

/// xorshift64*, as the compare bench's: a number below `n`.
fn below(state: &mut u64, n: usize) -> usize {
    let mut x = *state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    (((x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) * n as u64) >> 32) as usize
}

/// Runs `rounds` rounds (at least one) of `count` measurements, each round
/// starting one further along, so that no measurement always runs first.
fn in_turn(rounds: usize, count: usize, mut run: impl FnMut(usize)) {
    for round in 0..rounds.max(1) {
        for k in 0..count {
            run((k + round) % count);
        }
    }
}

/// Prints a Markdown table: one row per `(what, seconds)`, with its ratio to
/// `base` (`Rc`'s time for the same work).
fn print_rows(head: &str, rows: &[(&str, f64)], base: f64) {
    println!("| {head} | time | x Rc |\n|---|---:|---:|");
    for (what, t) in rows {
        println!("| {what} | {:.3} ms | {:.2}x |", t * 1e3, t / base);
    }
}

/// The floor of the `idle_collect` workload (benches/compare): per round,
/// `Rc` clones and drops a handle to each of `n` live nodes (2 random edges
/// each); rcycle does the same, which makes every node a candidate, and
/// then collects. Whatever the collector, a collection that must show those
/// candidates alive reads every node and every edge's target at least once:
/// the "one pass" row times exactly that read, with no collector around it.
pub fn idle_floor(n: usize, rounds: usize) {
    // Both graphs get the same edges: two from each node to random nodes.
    let mut seed = 0xCAFE;
    let plan: Vec<(usize, usize)> = (0..n)
        .flat_map(|from| [from, from])
        .map(|from| (from, below(&mut seed, n)))
        .collect();
    let gnodes: Vec<Gc<G>> = (0..n)
        .map(|_| {
            Gc::new(G {
                refs: RefCell::new(Vec::with_capacity(2)),
            })
        })
        .collect();
    for &(from, to) in &plan {
        gnodes[from].refs.borrow_mut().push(gnodes[to].clone());
    }
    let rnodes: Vec<Rc<R>> = (0..n)
        .map(|_| {
            Rc::new(R {
                refs: RefCell::new(Vec::with_capacity(2)),
            })
        })
        .collect();
    for &(from, to) in &plan {
        rnodes[from].refs.borrow_mut().push(rnodes[to].clone());
    }
    rcycle::collect();
    let (mut rc_touch, mut gc_touch, mut pass, mut collect) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds.max(1) {
        let ((), t) = timed(|| {
            for node in &rnodes {
                drop(std::hint::black_box(node.clone()));
            }
        });
        rc_touch.push(t);
        let ((), t) = timed(|| {
            for node in &gnodes {
                drop(std::hint::black_box(node.clone()));
            }
        });
        gc_touch.push(t);
        let (sum, t) = timed(|| {
            let mut sum = 0usize;
            for node in &gnodes {
                for edge in node.refs.borrow().iter() {
                    sum = sum.wrapping_add(Gc::strong_count(edge));
                }
            }
            sum
        });
        std::hint::black_box(sum);
        pass.push(t);
        let (freed, t) = timed(rcycle::collect);
        assert_eq!(freed, 0, "freed a live node");
        collect.push(t);
    }
    for node in &rnodes {
        node.refs.borrow_mut().clear();
    }
    drop(gnodes);
    rcycle::collect();
    let rc = median(rc_touch);
    println!(
        "\nThe floor of `idle_collect` ({n} live nodes, 2 edges each; per round, \
         medians of {rounds}):\n"
    );
    print_rows(
        "per round",
        &[
            ("Rc: clone and drop a handle to every node", rc),
            (
                "rcycle: the same (every node becomes a candidate)",
                median(gc_touch),
            ),
            (
                "one pass: read every node and every edge's target, nothing else",
                median(pass),
            ),
            (
                "rcycle: the collection that shows them alive",
                median(collect),
            ),
        ],
        rc,
    );
}

/// The floor of the `stress_graph` workload (benches/compare): `2^log2 + 1`
/// nodes with a label, `2^log2 + 1` random edges, then the nodes are cut
/// from the end of the list `2^step_log2` at a time, with a collection
/// after each cut (which finds little: most cut nodes still held by an
/// edge are reachable from the list), then everything is dropped (`Rc`
/// clears every node's edges by hand).
///
/// Per round: `Rc`'s whole workload; the same graph (same seed) with, after
/// each cut, one pass from every cut node still alive over all it reaches
/// (each node and edge read once per cut, as a collection must: the cut
/// nodes are its candidates), the passes summed; rcycle's whole workload,
/// and its collections summed.
pub fn stress_floor(log2: u32, step_log2: u32, rounds: usize) {
    #[derive(Trace)]
    struct G {
        label: String,
        edges: Vec<Gc<RefCell<G>>>,
    }
    struct R {
        label: String,
        edges: Vec<Rc<RefCell<R>>>,
        /// The last cut whose pass reached this node (the pass's graph
        /// only).
        seen: Cell<usize>,
    }
    let count = 1usize << log2;
    let step = 1usize << step_log2;
    /// The graph: node labels and `(from, to)` edges, as the workloads make
    /// them (one edge from a random node to a random node at a time).
    fn edges(count: usize) -> Vec<(usize, usize)> {
        let mut seed = 0x5EED;
        (0..=count)
            .map(|_| (below(&mut seed, count + 1), below(&mut seed, count + 1)))
            .collect()
    }
    let plan = edges(count);
    let rc_nodes = |plan: &[(usize, usize)]| {
        let nodes: Vec<Rc<RefCell<R>>> = (0..=count)
            .map(|i| {
                Rc::new(RefCell::new(R {
                    label: format!("Node {i}"),
                    edges: Vec::new(),
                    seen: Cell::new(usize::MAX),
                }))
            })
            .collect();
        for &(a, b) in plan {
            let target = nodes[b].clone();
            nodes[a].borrow_mut().edges.push(target);
        }
        nodes
    };
    let rc_teardown = |all: Vec<Weak<RefCell<R>>>| {
        for w in &all {
            if let Some(n) = w.upgrade() {
                n.borrow_mut().edges.clear();
            }
        }
    };
    // `Rc`'s workload, as the compare bench runs it.
    let rc_workload = || {
        let mut nodes = rc_nodes(&plan);
        let all: Vec<_> = nodes.iter().map(Rc::downgrade).collect();
        let mut label_bytes = 0;
        for i in (0..count).step_by(step) {
            nodes.truncate(count - i);
            label_bytes += nodes.last().map_or(0, |n| n.borrow().label.len());
        }
        drop(nodes);
        rc_teardown(all);
        label_bytes
    };
    // The passes: untimed workload, each pass timed. Returns the seconds
    // and the nodes visited, summed over the cuts.
    let passes = || {
        let mut nodes = rc_nodes(&plan);
        let all: Vec<_> = nodes.iter().map(Rc::downgrade).collect();
        let (mut seconds, mut visited) = (0.0, 0usize);
        let mut stack: Vec<*const RefCell<R>> = Vec::new();
        for (cut, i) in (0..count).step_by(step).enumerate() {
            let gone: Vec<_> = nodes[count - i..].iter().map(Rc::downgrade).collect();
            nodes.truncate(count - i);
            let (n, t) = timed(|| {
                let mut n = 0usize;
                for w in &gone {
                    if w.strong_count() == 0 {
                        continue;
                    }
                    stack.push(w.as_ptr());
                    while let Some(node) = stack.pop() {
                        // SAFETY: the node is alive (a live cut node, or
                        // reached from one by an edge it holds), nothing is
                        // dropped during the pass, and nothing borrows the
                        // `RefCell` mutably meanwhile. (Read unguarded, as
                        // rcycle's collector reads it: the pass only reads.)
                        let node = unsafe { (*node).try_borrow_unguarded() }.unwrap();
                        if node.seen.replace(cut) == cut {
                            continue;
                        }
                        n += 1;
                        stack.extend(node.edges.iter().map(Rc::as_ptr));
                    }
                }
                n
            });
            seconds += t;
            visited += n;
        }
        drop(nodes);
        rc_teardown(all);
        (seconds, visited)
    };
    // rcycle's workload, its collections timed too.
    let gc_workload = || {
        let mut nodes: Vec<Gc<RefCell<G>>> = (0..=count)
            .map(|i| {
                Gc::new(RefCell::new(G {
                    label: format!("Node {i}"),
                    edges: Vec::new(),
                }))
            })
            .collect();
        for &(a, b) in &plan {
            let target = nodes[b].clone();
            nodes[a].borrow_mut().edges.push(target);
        }
        let (mut collecting, mut examined, mut label_bytes) = (0.0, 0usize, 0usize);
        for i in (0..count).step_by(step) {
            nodes.truncate(count - i);
            // (Cut nodes that only hold each other in a cycle are garbage:
            // a few, freed here; `Rc` frees them at its teardown.)
            let (stats, t) = timed(rcycle::collect_with_stats);
            collecting += t;
            examined += stats.examined;
            label_bytes += nodes.last().map_or(0, |n| n.borrow().label.len());
        }
        drop(nodes);
        rcycle::collect();
        std::hint::black_box(label_bytes);
        (collecting, examined)
    };
    // Warm-up, then rounds in alternating order.
    let _ = (rc_workload(), passes(), gc_workload());
    let (mut rc_t, mut pass_t, mut gc_t, mut gc_collect) = (vec![], vec![], vec![], vec![]);
    let (mut visited, mut examined) = (0, 0);
    in_turn(rounds, 3, |which: usize| match which {
        0 => rc_t.push(timed(rc_workload).1),
        1 => {
            let (t, n) = passes();
            pass_t.push(t);
            visited = n;
        }
        _ => {
            let ((collecting, n), t) = timed(gc_workload);
            gc_t.push(t);
            gc_collect.push(collecting);
            examined = n;
        }
    });
    let rc = median(rc_t);
    let pass = median(pass_t);
    println!(
        "\nThe floor of `stress_graph` ({} nodes and edges, cut {step} at a time, \
         a collection after each cut; medians of {rounds} rounds). The passes \
         visited {visited} nodes in all, rcycle's collections examined {examined}:\n",
        count + 1
    );
    print_rows(
        "whole workload",
        &[
            ("Rc (no collections)", rc),
            ("one pass per cut from the cut nodes, summed", pass),
            ("floor: Rc plus the passes", rc + pass),
            ("rcycle", median(gc_t)),
            ("of which rcycle's collections", median(gc_collect)),
        ],
        rc,
    );
}

/// The 1M ring (`ring` in benches/compare and above) with rcycle's automatic
/// collection on (the default: the growth trigger collects, and finds
/// nothing, while the ring is built) and off during the build. `Rc` builds
/// the ring, breaks it by hand and drops it; rcycle builds it, drops it and
/// collects it.
pub fn ring_policy(n: usize, rounds: usize) {
    let _ = (super::rc::ring(n), super::gc::ring(n), ring_pass(n));
    let (mut rc_t, mut on, mut off, mut pass) = (vec![], vec![], vec![], vec![]);
    in_turn(rounds, 3, |which: usize| match which {
        0 => {
            rc_t.push(super::rc::ring(n));
            pass.push(ring_pass(n));
        }
        1 => on.push(super::gc::ring(n)),
        _ => {
            // (`disable` stops automatic collections only: the
            // workload's own `collect()` still runs.)
            rcycle::disable();
            off.push(super::gc::ring(n));
            rcycle::enable();
        }
    });
    let rc_total = median(rc_t.iter().map(super::Phases::total).collect());
    let pick =
        |v: &[super::Phases], f: fn(&super::Phases) -> f64| median(v.iter().map(f).collect());
    println!(
        "\nThe ring with automatic collection on and off during its build \
         ({n} nodes; medians of {rounds} rounds; ratios to `Rc`'s whole workload):\n"
    );
    print_rows(
        "phase",
        &[
            ("Rc: whole workload", rc_total),
            ("Rc: build", pick(&rc_t, |p| p.build)),
            ("rcycle, collection on: build", pick(&on, |p| p.build)),
            ("rcycle, collection off: build", pick(&off, |p| p.build)),
            ("Rc: break by hand and drop", pick(&rc_t, |p| p.drop)),
            (
                "one pass: read every node's two links, nothing else",
                median(pass.clone()),
            ),
            (
                "floor: Rc's whole workload plus that pass",
                rc_total + median(pass.clone()),
            ),
            (
                "rcycle: drop and collect",
                pick(&on, |p| p.drop + p.collect),
            ),
            (
                "rcycle, collection on: whole workload",
                pick(&on, super::Phases::total),
            ),
            (
                "rcycle, collection off: whole workload",
                pick(&off, super::Phases::total),
            ),
        ],
        rc_total,
    );
}

/// Times one pass over a ring of `n` nodes that reads each node's two links
/// and nothing else (what a collection must read at least to find the ring
/// unreachable). The ring is rcycle's, so that the pass reads the memory
/// the collection reads, laid out as the slabs lay it out (glibc lays out
/// `Rc`'s ring differently from one round to the next: the same pass over
/// an `Rc` ring took 2.2 ms in some rounds and 37-46 ms in others); it is
/// built with automatic collection off, and dropped and collected after,
/// untimed.
fn ring_pass(n: usize) -> f64 {
    rcycle::disable();
    let head = super::gc::ring_of(n);
    rcycle::enable();
    let (steps, t) = timed(|| {
        let mut steps = 0usize;
        let mut cur: &super::gc::R = &head;
        loop {
            // SAFETY: nothing borrows the links mutably during the pass, and
            // every node stays alive (the ring holds each one, `head` the
            // ring). (Read unguarded, as rcycle's collector reads them.)
            let (next, prev) = unsafe {
                (
                    cur.next.try_borrow_unguarded().unwrap(),
                    cur.prev.try_borrow_unguarded().unwrap(),
                )
            };
            steps += usize::from(prev.is_some());
            cur = next.as_ref().expect("a ring");
            if std::ptr::eq(cur, &*head) {
                break steps;
            }
        }
    });
    assert_eq!(steps, n);
    drop(head);
    rcycle::collect();
    t
}

/// The operations of the `churn` workload (benches/compare, dumpster's
/// benchmark): `ops` random steps on a list of roots that starts with 50
/// nodes (make a root, add an edge between two roots, drop a root, drop an
/// edge of a root), each node holding its edges in a `RefCell<Vec<_>>`.
/// `$new` makes a node, `$clone` clones a handle, `$refs` borrows a node's
/// edges mutably, `$made` is called with each new root, `$after` (if
/// given) with the number of each operation once it is done. Returns the
/// roots left and the number of nodes made.
macro_rules! churn_ops {
    ($ops:expr, $new:expr, $clone:expr, |$n:ident| $refs:expr, $made:expr) => {
        churn_ops!($ops, $new, $clone, |$n| $refs, $made, |_: usize| ())
    };
    ($ops:expr, $new:expr, $clone:expr, |$n:ident| $refs:expr, $made:expr, $after:expr) => {{
        let mut seed: u64 = 0xCAFE;
        let mut made = 50usize;
        let mut roots: Vec<_> = (0..50).map(|_| $new()).collect();
        roots.iter().for_each(&mut $made);
        for step in 0..$ops {
            let op = if roots.is_empty() {
                0
            } else {
                below(&mut seed, 4)
            };
            match op {
                0 => {
                    roots.push($new());
                    made += 1;
                    $made(roots.last().unwrap());
                }
                1 => {
                    if roots.len() > 1 {
                        let from = below(&mut seed, roots.len());
                        let to = below(&mut seed, roots.len());
                        let edge = $clone(&roots[to]);
                        let $n = &roots[from];
                        $refs.push(edge);
                    }
                }
                2 => {
                    let i = below(&mut seed, roots.len());
                    roots.swap_remove(i);
                }
                _ => {
                    let from = below(&mut seed, roots.len());
                    let $n = &roots[from];
                    // The edge is dropped after the borrow ends, as in the
                    // compare bench.
                    let _gone = {
                        let mut refs = $refs;
                        (!refs.is_empty()).then(|| {
                            let i = below(&mut seed, refs.len());
                            refs.swap_remove(i)
                        })
                    };
                }
            }
            $after(step);
        }
        (roots, made)
    }};
}

/// The floor of the `churn` workload against its fastest peer. Per round,
/// in turn: `Rc`'s workload (a `Weak` to every node kept, every node's
/// edges cleared at the end, as the compare bench does); the same
/// operations with no memory management at all (nodes are indices into an
/// arena of edge lists, nothing counted, nothing freed: the random numbers,
/// the root list and the edge lists' own growth, which every implementation
/// pays); the same again with every node's edge list freed, and its slot
/// reused, at the operation that made the node garbage (known beforehand:
/// a memory manager that needs no counts and no search, with memory reused
/// as soon as possible, as rcycle reuses it); gcmodule's workload (it never
/// collects on its own: one collection at the end, as in the compare
/// bench); rcycle's (automatic collection on, one collection at the end).
/// The target for rcycle is 0.7x gcmodule.
pub fn churn_floor(ops: usize, rounds: usize) {
    struct C {
        refs: RefCell<Vec<gcmodule::Cc<C>>>,
    }
    impl gcmodule::Trace for C {
        fn trace(&self, tracer: &mut gcmodule::Tracer) {
            self.refs.trace(tracer);
        }
        fn is_type_tracked() -> bool {
            true
        }
    }
    let rc_workload = || {
        let mut all: Vec<Weak<R>> = Vec::new();
        let (roots, made) = churn_ops!(
            ops,
            || Rc::new(R {
                refs: RefCell::new(Vec::new())
            }),
            Rc::clone,
            |n| n.refs.borrow_mut(),
            |r: &Rc<R>| all.push(Rc::downgrade(r))
        );
        drop(roots);
        for w in &all {
            if let Some(n) = w.upgrade() {
                drop(std::mem::take(&mut *n.refs.borrow_mut()));
            }
        }
        made
    };
    let arena_workload = || {
        // The arena holds every node's edge list; a node is its index.
        let arena: RefCell<Vec<Vec<u32>>> = RefCell::new(Vec::new());
        let (roots, made) = churn_ops!(
            ops,
            || {
                let mut arena = arena.borrow_mut();
                arena.push(Vec::new());
                (arena.len() - 1) as u32
            },
            |&i: &u32| i,
            |n| std::cell::RefMut::map(arena.borrow_mut(), |a| &mut a[*n as usize]),
            |_: &u32| ()
        );
        std::hint::black_box((roots, arena));
        made
    };
    let gcmodule_workload = || {
        let (roots, made) = churn_ops!(
            ops,
            || gcmodule::Cc::new(C {
                refs: RefCell::new(Vec::new())
            }),
            gcmodule::Cc::clone,
            |n| n.refs.borrow_mut(),
            |_: &gcmodule::Cc<C>| ()
        );
        drop(roots);
        gcmodule::collect_thread_cycles();
        made
    };
    let gc_workload = || {
        let (roots, made) = churn_ops!(
            ops,
            || Gc::new(G {
                refs: RefCell::new(Vec::new())
            }),
            Gc::clone,
            |n| n.refs.borrow_mut(),
            |_: &Gc<G>| ()
        );
        drop(roots);
        rcycle::collect();
        made
    };
    // When each node becomes garbage: rcycle's workload once more
    // (untimed), with a collection after every operation, each node noting
    // the operation at which its value was dropped (nodes are numbered in
    // the order they are made, the same in every workload).
    let deaths = churn_deaths(ops);
    // The arena again, where an oracle frees each node's edge list at the
    // operation that made the node garbage and hands its slot to the next
    // node made: the least any memory manager does, with no counting and
    // no search, and memory reused as early as possible.
    let oracle_workload = || {
        let arena: RefCell<Vec<Vec<u32>>> = RefCell::new(Vec::new());
        let free: RefCell<Vec<u32>> = RefCell::new(Vec::new());
        let slot_of: RefCell<Vec<u32>> = RefCell::new(Vec::new());
        let (roots, made) = churn_ops!(
            ops,
            || {
                let mut arena = arena.borrow_mut();
                let slot = free.borrow_mut().pop().unwrap_or_else(|| {
                    arena.push(Vec::new());
                    (arena.len() - 1) as u32
                });
                slot_of.borrow_mut().push(slot);
                slot
            },
            |&i: &u32| i,
            |n| std::cell::RefMut::map(arena.borrow_mut(), |a| &mut a[*n as usize]),
            |_: &u32| (),
            |step: usize| {
                let (mut arena, mut free) = (arena.borrow_mut(), free.borrow_mut());
                let slot_of = slot_of.borrow();
                for &node in &deaths.dying[deaths.starts[step]..deaths.starts[step + 1]] {
                    let slot = slot_of[node as usize];
                    arena[slot as usize] = Vec::new();
                    free.push(slot);
                }
            }
        );
        std::hint::black_box((roots, arena));
        made
    };
    // Warm-up, then rounds in alternating order.
    let made = [
        rc_workload(),
        arena_workload(),
        oracle_workload(),
        gcmodule_workload(),
        gc_workload(),
    ];
    assert!(made.iter().all(|&m| m == made[0]), "the same operations");
    let mut times: [Vec<f64>; 5] = Default::default();
    in_turn(rounds, 5, |which: usize| {
        let t = match which {
            0 => timed(rc_workload).1,
            1 => timed(arena_workload).1,
            2 => timed(oracle_workload).1,
            3 => timed(gcmodule_workload).1,
            _ => timed(gc_workload).1,
        };
        times[which].push(t);
    });
    let [rc, arena, oracle, cc, gc] = times.map(median);
    println!(
        "\nThe floor of `churn` ({ops} random operations on 50 roots, {} nodes \
         made; medians of {rounds} rounds, the five in turn):\n",
        made[0]
    );
    print_rows(
        "whole workload",
        &[
            ("Rc (cycles broken by hand at the end)", rc),
            (
                "the operations alone (an arena of edge lists: nothing counted or freed)",
                arena,
            ),
            (
                "the same, each node freed when it becomes garbage (an oracle)",
                oracle,
            ),
            ("gcmodule (one collection at the end)", cc),
            ("0.7x gcmodule (the target for rcycle)", 0.7 * cc),
            ("rcycle", gc),
        ],
        rc,
    );
}

/// The nodes that become garbage at each operation of the churn:
/// `dying[starts[k]..starts[k + 1]]` for operation `k`, nodes numbered in
/// the order they are made.
struct ChurnDeaths {
    dying: Vec<u32>,
    starts: Vec<usize>,
}

/// Runs rcycle's churn once with a collection after every operation and
/// notes when each node's value is dropped.
fn churn_deaths(ops: usize) -> ChurnDeaths {
    thread_local! {
        /// The operation under way, and `(operation, node)` for each drop.
        static NOW: Cell<usize> = const { Cell::new(0) };
        static DROPPED: RefCell<Vec<(usize, u32)>> = const { RefCell::new(Vec::new()) };
    }
    #[derive(Trace)]
    struct D {
        #[trace(skip)]
        id: u32,
        refs: RefCell<Vec<Gc<D>>>,
    }
    impl Drop for D {
        fn drop(&mut self) {
            DROPPED.with(|d| d.borrow_mut().push((NOW.get(), self.id)));
        }
    }
    let next = Cell::new(0u32);
    let (roots, made) = churn_ops!(
        ops,
        || {
            let id = next.get();
            next.set(id + 1);
            Gc::new(D {
                id,
                refs: RefCell::new(Vec::new()),
            })
        },
        Gc::clone,
        |n| n.refs.borrow_mut(),
        |_: &Gc<D>| (),
        |step: usize| {
            rcycle::collect();
            NOW.set(step + 1);
        }
    );
    drop(roots);
    rcycle::collect();
    let mut dropped = DROPPED.take();
    assert_eq!(dropped.len(), made, "every node dropped once");
    // (Drops noted at operation `ops` happened after the loop.)
    dropped.sort_unstable();
    let mut starts = Vec::with_capacity(ops + 1);
    let mut k = 0;
    for step in 0..=ops {
        while k < dropped.len() && dropped[k].0 < step {
            k += 1;
        }
        starts.push(k);
    }
    ChurnDeaths {
        dying: dropped.iter().map(|&(_, node)| node).collect(),
        starts,
    }
}
