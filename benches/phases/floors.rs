//! Floors and policy costs (issue 23): what the cycle workloads that miss
//! "1.5x `Rc`" would cost with the least work any collector must do, timed
//! beside `Rc` and rcycle in the same rounds.
//!
//! - [`idle_floor`]: `idle_collect`, live nodes touched and collected;
//! - [`stress_floor`]: `stress_graph`, a random graph cut 1,024 nodes at a
//!   time with a collection after each cut;
//! - [`ring_policy`]: the 1M ring with automatic collection on and off
//!   during its build.
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
    #[derive(Trace)]
    struct G {
        refs: RefCell<Vec<Gc<G>>>,
    }
    struct R {
        refs: RefCell<Vec<Rc<R>>>,
    }
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
