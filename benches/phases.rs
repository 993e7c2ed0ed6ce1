//! Phase timings, rcycle against `std::rc::Rc` (issue 23): how long each
//! phase of a workload takes (build, drop, collect), so that the cost of
//! dropping and of collecting can be read apart from the cost of
//! allocating.
//!
//! Every workload runs in rounds; each round runs `Rc` and rcycle once each,
//! in an order that alternates, and times every phase with `Instant`. A
//! ratio is the median over rounds of `rcycle / Rc` within a round (as in
//! `benches/compare/paired.rs`), so that the machine's drift between rounds
//! cannot skew it. Every round checks that each implementation dropped
//! exactly the nodes it made.
//!
//! Workloads (100,000 nodes unless said):
//! - `tree4`: a 4-ary tree whose children are moved into their parents
//!   (acyclic): build, drop of the root;
//! - `tree4_weak_parent`: the same tree with a weak pointer from each child
//!   to its parent: build (the parent pointers set after), drop of the root;
//! - `tree4_strong_parent`: the same with strong parent pointers (a cycle
//!   per edge): build, then `Rc` breaks the cycles by hand and drops, rcycle
//!   drops the root and collects;
//! - `ring`: a doubly linked ring of 1,000,000 nodes: build, then `Rc`
//!   breaks the ring by hand and drops, rcycle drops and collects;
//! - `pairs`: 100,000 two-node cycles: build, then `Rc` breaks each by hand,
//!   rcycle drops them and collects.
//!
//! Then the floors of the workloads that miss issue 23's targets
//! (`phases/floors.rs`: idle_collect, stress_graph, the ring's policy, and
//! churn against gcmodule).
//!
//! `cargo bench --bench phases` prints a Markdown table;
//! `RCYCLE_PHASE_ROUNDS` sets the number of rounds (default 101);
//! `RCYCLE_PHASE_ONLY=<workload>` runs one workload, `floors` the floors
//! only. Without
//! `--bench` (`cargo test --benches`), each workload runs one round at a
//! tiny size, as a smoke test.

use std::cell::Cell;
use std::time::Instant;

#[path = "phases/floors.rs"]
mod floors;

thread_local! {
    static DROPS: Cell<usize> = const { Cell::new(0) };
}

/// A zero-sized field of every node: its drop counts the node.
struct Counted;

impl Drop for Counted {
    #[inline]
    fn drop(&mut self) {
        DROPS.with(|d| d.set(d.get() + 1));
    }
}

// SAFETY: owns no `Gc`.
unsafe impl rcycle::Trace for Counted {
    fn trace(&self, _: &mut rcycle::Tracer<'_>) {}
    fn may_contain_gc() -> bool {
        false
    }
}

fn drops() -> usize {
    DROPS.with(Cell::get)
}

/// The phases of one run of a workload, in seconds (collect is 0 where the
/// implementation has none).
#[derive(Clone, Copy, Default)]
struct Phases {
    build: f64,
    drop: f64,
    collect: f64,
}

impl Phases {
    fn total(&self) -> f64 {
        self.build + self.drop + self.collect
    }
}

/// Times `f` and returns its result and the seconds it took.
fn timed<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let start = Instant::now();
    let r = std::hint::black_box(f());
    (r, start.elapsed().as_secs_f64())
}

/// Runs one workload's phases: `build` (timed), then `teardown` of what it
/// built (timed: a drop, or `Rc` breaking its cycles by hand and dropping),
/// then `collect` (timed; nothing for `Rc`).
fn phases_of<T>(
    build: impl FnOnce() -> T,
    teardown: impl FnOnce(T),
    collect: impl FnOnce(),
) -> Phases {
    let (built, build) = timed(build);
    let ((), drop) = timed(|| teardown(built));
    let ((), collect) = timed(collect);
    Phases {
        build,
        drop,
        collect,
    }
}

/// The workloads, written once over a pointer type `P` (and its weak `W`).
macro_rules! workloads {
    ($derive:meta, $collect:expr, $is_rc:expr) => {
        #[$derive]
        pub struct T4 {
            _c: super::Counted,
            _payload: u64,
            _kids: [Option<P<T4>>; 4],
        }

        /// The children of node `i` in a 4-ary tree of `n` nodes (nodes
        /// `4i+1..=4i+4`), each made by `node`.
        fn kids<N>(i: usize, n: usize, node: fn(usize, usize) -> P<N>) -> [Option<P<N>>; 4] {
            std::array::from_fn(|k| {
                let c = 4 * i + k + 1;
                (c < n).then(|| node(c, n))
            })
        }

        /// Node `i` of a 4-ary tree of `n` nodes.
        fn tree4(i: usize, n: usize) -> P<T4> {
            P::new(T4 {
                _c: super::Counted,
                _payload: i as u64,
                _kids: kids(i, n, tree4),
            })
        }

        pub fn tree(n: usize) -> super::Phases {
            super::phases_of(|| tree4(0, n), drop, || ())
        }

        #[$derive]
        pub struct W4 {
            _c: super::Counted,
            parent: RefCell<Option<W<W4>>>,
            kids: [Option<P<W4>>; 4],
        }

        fn wtree4(i: usize, n: usize) -> P<W4> {
            let node = P::new(W4 {
                _c: super::Counted,
                parent: RefCell::new(None),
                kids: kids(i, n, wtree4),
            });
            for kid in node.kids.iter().flatten() {
                *kid.parent.borrow_mut() = Some(P::downgrade(&node));
            }
            node
        }

        pub fn weak_parent(n: usize) -> super::Phases {
            super::phases_of(|| wtree4(0, n), drop, || ())
        }

        #[$derive]
        pub struct S4 {
            _c: super::Counted,
            parent: RefCell<Option<P<S4>>>,
            kids: [Option<P<S4>>; 4],
        }

        fn stree4(i: usize, n: usize) -> P<S4> {
            let node = P::new(S4 {
                _c: super::Counted,
                parent: RefCell::new(None),
                kids: kids(i, n, stree4),
            });
            for kid in node.kids.iter().flatten() {
                *kid.parent.borrow_mut() = Some(node.clone());
            }
            node
        }

        /// Breaks every parent pointer (what a careful `Rc` programmer does),
        /// with an explicit stack.
        fn unparent(root: &P<S4>) {
            let mut stack = vec![root.clone()];
            while let Some(node) = stack.pop() {
                node.parent.borrow_mut().take();
                stack.extend(node.kids.iter().flatten().cloned());
            }
        }

        pub fn strong_parent(n: usize) -> super::Phases {
            super::phases_of(
                || stree4(0, n),
                |root| {
                    if $is_rc {
                        unparent(&root);
                    }
                    drop(root)
                },
                || $collect,
            )
        }

        #[$derive]
        pub struct R {
            _c: super::Counted,
            pub next: RefCell<Option<P<R>>>,
            pub prev: RefCell<Option<P<R>>>,
        }

        pub fn ring_of(n: usize) -> P<R> {
            let head = P::new(R {
                _c: super::Counted,
                next: RefCell::new(None),
                prev: RefCell::new(None),
            });
            let mut last = head.clone();
            for _ in 1..n {
                let node = P::new(R {
                    _c: super::Counted,
                    next: RefCell::new(None),
                    prev: RefCell::new(Some(last.clone())),
                });
                *last.next.borrow_mut() = Some(node.clone());
                last = node;
            }
            *last.next.borrow_mut() = Some(head.clone());
            *head.prev.borrow_mut() = Some(last);
            head
        }

        pub fn ring(n: usize) -> super::Phases {
            super::phases_of(
                || ring_of(n),
                |head| {
                    if $is_rc {
                        // Iteratively (a recursive drop along a 1M ring would
                        // overflow the stack): take each node's two links, so
                        // each node is freed as the walk leaves it.
                        let mut cur = Some(head.clone());
                        while let Some(node) = cur {
                            node.prev.borrow_mut().take();
                            cur = node.next.borrow_mut().take();
                        }
                    }
                    drop(head)
                },
                || $collect,
            )
        }

        #[$derive]
        pub struct Pair {
            _c: super::Counted,
            other: RefCell<Option<P<Pair>>>,
        }

        pub fn pairs(n: usize) -> super::Phases {
            let build = || {
                (0..n)
                    .map(|_| {
                        let a = P::new(Pair {
                            _c: super::Counted,
                            other: RefCell::new(None),
                        });
                        let b = P::new(Pair {
                            _c: super::Counted,
                            other: RefCell::new(Some(a.clone())),
                        });
                        *a.other.borrow_mut() = Some(b);
                        a
                    })
                    .collect::<Vec<_>>()
            };
            let teardown = |pairs: Vec<P<Pair>>| {
                if $is_rc {
                    for a in &pairs {
                        a.other.borrow_mut().take();
                    }
                }
                drop(pairs)
            };
            super::phases_of(build, teardown, || $collect)
        }
    };
}

mod rc {
    use std::cell::RefCell;
    use std::rc::{Rc as P, Weak as W};
    workloads!(derive(), (), true);
}

mod gc {
    use rcycle::{Gc as P, Trace, WeakGc as W};
    use std::cell::RefCell;
    workloads!(
        derive(Trace),
        {
            rcycle::collect();
        },
        false
    );
}

/// One workload: its name, the nodes it makes at full size, and each
/// implementation's run.
struct Workload {
    name: &'static str,
    nodes: usize,
    /// Nodes made for `n`.
    made: fn(usize) -> usize,
    /// Whether it makes cycles (which rcycle collects and `Rc` breaks).
    cyclic: bool,
    rc: fn(usize) -> Phases,
    gc: fn(usize) -> Phases,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs one implementation's workload and checks its drop count.
fn run_checked(name: &str, f: fn(usize) -> Phases, n: usize, made: usize) -> Phases {
    let before = drops();
    let p = f(n);
    assert_eq!(drops() - before, made, "{name}: nodes dropped");
    p
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let rounds: usize = if full {
        std::env::var("RCYCLE_PHASE_ROUNDS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(101)
    } else {
        1
    };
    let workloads = [
        Workload {
            name: "tree4",
            nodes: 100_000,
            made: |n| n,
            cyclic: false,
            rc: rc::tree,
            gc: gc::tree,
        },
        Workload {
            name: "tree4_weak_parent",
            nodes: 100_000,
            made: |n| n,
            cyclic: false,
            rc: rc::weak_parent,
            gc: gc::weak_parent,
        },
        Workload {
            name: "tree4_strong_parent",
            nodes: 100_000,
            made: |n| n,
            cyclic: true,
            rc: rc::strong_parent,
            gc: gc::strong_parent,
        },
        Workload {
            name: "ring",
            nodes: 1_000_000,
            made: |n| n,
            cyclic: true,
            rc: rc::ring,
            gc: gc::ring,
        },
        Workload {
            name: "pairs",
            nodes: 100_000,
            made: |n| 2 * n,
            cyclic: true,
            rc: rc::pairs,
            gc: gc::pairs,
        },
    ];
    // For profiles: one workload (`RCYCLE_PHASE_ONLY=tree4`, or `floors`), and one
    // implementation's rounds only (`RCYCLE_PHASE_IMP=rc` or `rcycle`).
    let only = std::env::var("RCYCLE_PHASE_ONLY").ok();
    let imp = std::env::var("RCYCLE_PHASE_IMP").ok();
    println!(
        "Each phase timed apart (`benches/phases.rs`): {rounds} rounds after an \
         untimed warm-up, `Rc` and rcycle once each per round in alternating \
         order, in one process; a ratio is the median over rounds of \
         `rcycle / Rc` within a round. Every round checks that each dropped \
         exactly the nodes it made. rcycle runs with automatic collection on \
         (collections it starts during a build are part of the build).\n"
    );
    println!(
        "| workload | phase | Rc (median) | rcycle (median) | rcycle / Rc (median of rounds) |"
    );
    println!("|---|---|---:|---:|---:|");
    // Issue 23's targets on these phases: (text, ratio, limit).
    let mut verdicts: Vec<(String, f64, f64)> = Vec::new();
    for w in &workloads {
        if only.as_deref().is_some_and(|o| o != w.name) {
            continue;
        }
        let n = if full { w.nodes } else { 100 };
        let made = (w.made)(n);
        if let Some(imp) = &imp {
            let f = if imp == "rc" { w.rc } else { w.gc };
            for _ in 0..rounds {
                run_checked(imp, f, n, made);
            }
            continue;
        }
        // An untimed warm-up round for each (`RCYCLE_PHASE_COLD=1` skips
        // it: a fresh process's first round, as a one-process-per-run
        // measurement sees it).
        if std::env::var_os("RCYCLE_PHASE_COLD").is_none() {
            run_checked("Rc", w.rc, n, made);
            run_checked("rcycle", w.gc, n, made);
        }
        let mut rc_runs = Vec::new();
        let mut gc_runs = Vec::new();
        for round in 0..rounds {
            if round % 2 == 0 {
                rc_runs.push(run_checked("Rc", w.rc, n, made));
                gc_runs.push(run_checked("rcycle", w.gc, n, made));
            } else {
                gc_runs.push(run_checked("rcycle", w.gc, n, made));
                rc_runs.push(run_checked("Rc", w.rc, n, made));
            }
        }
        type Pick = fn(&Phases) -> f64;
        let cyclic = w.cyclic;
        let teardown = if cyclic {
            "teardown (Rc: break the cycles by hand, drop; rcycle: drop, collect)"
        } else {
            "drop"
        };
        let phases: [(&str, Pick, bool); 4] = [
            ("build", |p| p.build, true),
            (teardown, |p| p.drop + p.collect, true),
            ("of which rcycle's collect", |p| p.collect, false),
            ("total", Phases::total, true),
        ];
        for (phase, pick, compared) in phases {
            if !compared && !cyclic {
                continue;
            }
            let rc_med = median(rc_runs.iter().map(pick).collect());
            let gc_med = median(gc_runs.iter().map(pick).collect());
            let ratio = if compared {
                let r = median(
                    rc_runs
                        .iter()
                        .zip(&gc_runs)
                        .map(|(r, g)| pick(g) / pick(r))
                        .collect(),
                );
                if !cyclic && phase != "build" {
                    let (what, limit) = if phase == "drop" {
                        ("drop phase", 1.2)
                    } else {
                        ("whole workload", 1.0)
                    };
                    verdicts.push((format!("{}: {what} <= {limit:.1}x Rc", w.name), r, limit));
                }
                format!("{r:.2}x")
            } else {
                "".to_string()
            };
            let rc_text = if compared {
                format!("{:.2} ms", rc_med * 1e3)
            } else {
                String::new()
            };
            println!(
                "| {} ({} nodes) | {} | {} | {:.2} ms | {} |",
                w.name,
                made,
                phase,
                rc_text,
                gc_med * 1e3,
                ratio
            );
        }
    }
    if !verdicts.is_empty() {
        println!("\n| target (issue 23) | status |\n|---|---|");
        for (what, r, limit) in verdicts {
            let status = if r <= limit { "met" } else { "**missed**" };
            println!("| {what} | {status} ({r:.2}x) |");
        }
    }
    // (`RCYCLE_PHASE_ONLY=floors`: the floors alone.)
    if only.as_deref().is_none_or(|o| o == "floors") && imp.is_none() {
        floors::idle_floor(if full { 100_000 } else { 100 }, rounds);
        floors::stress_floor(if full { 15 } else { 8 }, if full { 10 } else { 4 }, rounds);
        floors::ring_policy(if full { 1_000_000 } else { 100 }, rounds);
        floors::churn_floor(if full { 1_000_000 } else { 2_000 }, rounds);
    }
}
