//! rcycle against `std::rc::Rc` and the cycle-collecting peers
//! (bacon_rajan_cc, rust-cc, gcmodule, dumpster's `unsync`, gc): one
//! criterion group per workload, one benchmark per implementation.
//!
//! Every workload returns how many nodes it made, and every iteration asserts
//! that exactly that many were dropped (a zero-sized `Counted` field in each
//! node counts drops), with the crate's own collection call inside the timed
//! work wherever it is needed to free cycles. `Rc` breaks its cycles by hand,
//! also inside the timed work.
//!
//! The binary has three more modes, used by `benches/run.sh`:
//! - `RCYCLE_BENCH_LIST=1`: print every `group implementation` pair;
//! - `RCYCLE_BENCH_MEASURE=group/implementation`: run that workload once in
//!   this fresh process (full size, on the 8 MiB main thread) and print one
//!   JSON line with its peak resident memory; a crate that overflows the stack
//!   kills this process, which is how the runner detects it;
//! - `RCYCLE_BENCH_WRITE=path`: write BENCHMARKS.md from criterion's estimates
//!   and the runner's measurements (see `write_md.rs`).
//!
//! Sizes: `cargo bench` measures the issue's sizes; without `--bench` (as
//! `cargo test --benches` runs it) every benchmark runs once at a tiny size.

mod common;
mod nodes_manual;
mod paired;
mod write_md;

mod bacon_imp;
mod dumpster_imp;
mod gc_imp;
mod gcmodule_imp;
mod rc_imp;
mod rcycle_imp;
mod rustcc_imp;

use std::time::{Duration, Instant};

use criterion::{Bencher, Criterion, SamplingMode};

use common::{drops, Imp, Sizes};

/// Every implementation, in table order.
pub const IMPS: [Imp; 7] = [
    rc_imp::IMP,
    rcycle_imp::IMP,
    bacon_imp::IMP,
    rustcc_imp::IMP,
    gcmodule_imp::IMP,
    dumpster_imp::IMP,
    gc_imp::IMP,
];

/// The cycle-collecting crates rcycle is compared with ("fastest peer" is
/// the fastest of these).
pub const PEERS: &[&str] = &["bacon_rajan_cc", "rust-cc", "gcmodule", "dumpster", "gc"];

/// Pairs `(group, implementation)` that overflow the 8 MiB main stack at full
/// size and so are not run by `cargo bench` (the process would abort). Found
/// by `benches/run.sh`, which runs every pair once in its own process and
/// records the exit signal in BENCHMARKS.md; it warns when this list is out
/// of date. `RCYCLE_BENCH_SKIP=group/imp,..` adds pairs.
pub const KNOWN_OVERFLOWS: &[(&str, &str)] = &[
    ("ring", "bacon_rajan_cc"),
    ("ring", "dumpster"),
    ("ring", "gc"),
];

const SEED: u64 = 0xCAFE;

/// What kind of target a workload is judged by.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// No cycle: at most 1.0x `Rc`.
    NoCycles,
    /// Clone churn: at most 1.3x `Rc`.
    CloneChurn,
    /// Cycles to free: at most 0.7x the fastest peer.
    Cycles,
    /// Collection latency beside a large live heap: no slower than the
    /// fastest peer.
    Latency,
}

pub enum Body {
    /// One call of the workload; `None` if the crate cannot express it.
    Once(fn(&Imp, &Sizes) -> Option<usize>),
    /// A live graph of `idle_nodes` nodes with 2 edges each is built (not
    /// timed); each iteration touches every node and collects,
    /// `idle_rounds` times, freeing nothing.
    Idle,
    /// A live graph of `latency_live` nodes with 1 edge each is built (not
    /// timed); each iteration makes a dead 2-cycle and collects.
    Latency,
}

pub struct Workload {
    pub group: &'static str,
    pub title: &'static str,
    pub kind: Kind,
    pub body: Body,
}

pub const WORKLOADS: &[Workload] = &[
    Workload {
        group: "binary_trees",
        title: "Binary trees (depth 4..11, benchmarks-game: stretch tree, long-lived tree, 2^(15-d) trees of each even depth d)",
        kind: Kind::NoCycles,
        body: Body::Once(|imp, s| Some((imp.binary_trees)(s.tree_depth))),
    },
    Workload {
        group: "parent_weak",
        title: "Binary trees with weak parent pointers (no cycle)",
        kind: Kind::NoCycles,
        body: Body::Once(|imp, s| imp.parent_weak.map(|f| f(s.tree_depth))),
    },
    Workload {
        group: "parent_strong",
        title: "Binary trees with strong parent pointers (every tree is cyclic garbage)",
        kind: Kind::Cycles,
        body: Body::Once(|imp, s| Some((imp.parent_strong)(s.tree_depth))),
    },
    Workload {
        group: "linked_lists",
        title: "30 doubly linked lists of 4096 nodes",
        kind: Kind::Cycles,
        body: Body::Once(|imp, s| Some((imp.linked_lists)(s.lists, s.list_len))),
    },
    Workload {
        group: "stress_graph",
        title: "Random graph stress test (2^15 nodes and edges, truncation + collect every 2^10 steps)",
        kind: Kind::Cycles,
        body: Body::Once(|imp, s| {
            Some((imp.stress_graph)(s.graph_log2, s.graph_step_log2, SEED))
        }),
    },
    Workload {
        group: "churn",
        title: "dumpster's random churn (1M operations over 50 roots)",
        kind: Kind::Cycles,
        body: Body::Once(|imp, s| Some((imp.churn)(s.churn_ops, SEED))),
    },
    Workload {
        group: "clone_churn",
        title: "Clone churn (10M clone + drop of one pointer)",
        kind: Kind::CloneChurn,
        body: Body::Once(|imp, s| Some((imp.clone_churn)(s.clones))),
    },
    Workload {
        group: "small_cycles",
        title: "Many small cycles (100k two-object cycles)",
        kind: Kind::Cycles,
        body: Body::Once(|imp, s| Some((imp.small_cycles)(s.pairs))),
    },
    Workload {
        group: "ring",
        title: "A doubly linked ring of 1M nodes",
        kind: Kind::Cycles,
        body: Body::Once(|imp, s| Some((imp.ring)(s.ring))),
    },
    Workload {
        group: "idle_collect",
        title: "Idle collections (20 x: touch 100k live nodes, collect; nothing freed)",
        kind: Kind::Cycles,
        body: Body::Idle,
    },
    Workload {
        group: "latency",
        title: "Collection latency: a dead 2-cycle beside 1M live nodes",
        kind: Kind::Latency,
        body: Body::Latency,
    },
];

/// Extra measurements (memory only, not timed by criterion).
pub const EXTRA_MEASUREMENTS: &[&str] = &["small_cycles_x4", "u64_objects"];

fn skipped(group: &str, imp: &str) -> bool {
    if KNOWN_OVERFLOWS.contains(&(group, imp)) {
        return true;
    }
    std::env::var("RCYCLE_BENCH_SKIP")
        .map(|s| s.split(',').any(|p| p == format!("{group}/{imp}")))
        .unwrap_or(false)
}

fn supported(w: &Workload, imp: &Imp) -> bool {
    match w.group {
        "parent_weak" => imp.parent_weak.is_some(),
        _ => true,
    }
}

fn check(expected: usize, before: usize, what: &str) {
    let freed = drops() - before;
    assert_eq!(
        freed, expected,
        "{what}: {expected} nodes created, {freed} dropped"
    );
}

fn run_checked(f: impl FnOnce() -> usize, what: &str) {
    let before = drops();
    let expected = f();
    check(expected, before, what);
}

fn live_graph(imp: &Imp, s: &Sizes, idle: bool) -> Box<dyn common::LiveGraph> {
    if idle {
        (imp.live_graph)(s.idle_nodes, 2, SEED)
    } else {
        (imp.live_graph)(s.latency_live, 1, SEED)
    }
}

fn bench_workload(c: &mut Criterion, w: &Workload, s: &Sizes) {
    let mut g = c.benchmark_group(w.group);
    g.sampling_mode(SamplingMode::Flat);
    for imp in &IMPS {
        if !supported(w, imp) || skipped(w.group, imp.name) {
            continue;
        }
        let what = format!("{}/{}", w.group, imp.name);
        match w.body {
            Body::Once(f) => {
                g.bench_function(imp.name, |b: &mut Bencher| {
                    b.iter(|| run_checked(|| f(imp, s).unwrap(), &what))
                });
            }
            Body::Idle | Body::Latency => {
                let idle = matches!(w.body, Body::Idle);
                let before = drops();
                // Built on first use (not timed), so a filtered-out benchmark
                // builds nothing; kept across criterion's samples.
                let mut graph = None;
                g.bench_function(imp.name, |b: &mut Bencher| {
                    let graph = graph.get_or_insert_with(|| live_graph(imp, s, idle));
                    if idle {
                        b.iter(|| graph.touch_and_collect(s.idle_rounds))
                    } else {
                        b.iter(|| run_checked(imp.dead_pair, &what))
                    }
                });
                if let Some(graph) = graph {
                    let freed_by_iterations = drops() - before;
                    let created = graph.teardown();
                    // The iterations' own objects were checked as they went.
                    check(created, before + freed_by_iterations, &what);
                }
            }
        }
    }
    g.finish();
}

/// VmRSS and VmHWM of this process, in KiB.
fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// `RCYCLE_BENCH_MEASURE=group/imp`: one full-size run in this process.
fn measure(spec: &str) {
    let (group, name) = spec.split_once('/').expect("group/imp");
    let imp = IMPS
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no implementation {name}"));
    let s = Sizes::full();
    let (base, _) = rss_kib();
    let start = Instant::now();
    let mut extra = String::new();
    match group {
        "small_cycles_x4" => run_checked(|| (imp.small_cycles)(4 * s.pairs), spec),
        "u64_objects" => {
            let n = 1_000_000;
            let (before, _) = rss_kib();
            let (objects, handle) = (imp.u64_objects)(n);
            let (after, _) = rss_kib();
            let per = ((after - before) * 1024) as f64 / n as f64 - handle as f64;
            extra = format!(r#","bytes_per_object":{per:.1}"#);
            if imp.name == "rcycle" {
                let r = rcycle::live_report();
                extra += &format!(
                    r#","accounted_bytes_per_object":{:.1}"#,
                    r.size() as f64 / r.count().max(1) as f64
                );
            }
            drop(objects);
            (imp.collect)();
        }
        _ => {
            let w = WORKLOADS
                .iter()
                .find(|w| w.group == group)
                .unwrap_or_else(|| panic!("no workload {group}"));
            if !supported(w, imp) {
                println!(r#"{{"group":"{group}","imp":"{name}","status":"unsupported"}}"#);
                return;
            }
            match w.body {
                Body::Once(f) => {
                    // RCYCLE_BENCH_REPEAT=n: n runs in this process, each
                    // timed on stderr (the heap state a later run inherits
                    // is part of what criterion measures).
                    let repeat = std::env::var("RCYCLE_BENCH_REPEAT")
                        .ok()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    for run in 0..repeat {
                        let t = Instant::now();
                        run_checked(|| f(imp, &s).unwrap(), spec);
                        if repeat > 1 {
                            eprintln!("run {run}: {:?}", t.elapsed());
                        }
                    }
                }
                Body::Idle | Body::Latency => {
                    let idle = matches!(w.body, Body::Idle);
                    let before = drops();
                    let graph = live_graph(imp, &s, idle);
                    if idle {
                        graph.touch_and_collect(s.idle_rounds);
                    } else {
                        run_checked(imp.dead_pair, spec);
                    }
                    let freed = drops() - before;
                    let created = graph.teardown();
                    check(created, before + freed, spec);
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let (_, peak) = rss_kib();
    println!(
        r#"{{"group":"{group}","imp":"{name}","status":"ok","base_kib":{base},"peak_kib":{peak},"secs":{secs:.3}{extra}}}"#
    );
}

fn main() {
    if std::env::var_os("RCYCLE_BENCH_LIST").is_some() {
        for w in WORKLOADS {
            for imp in &IMPS {
                if supported(w, imp) {
                    println!("{} {}", w.group, imp.name);
                }
            }
        }
        for extra in EXTRA_MEASUREMENTS {
            for imp in &IMPS {
                println!("{extra} {}", imp.name);
            }
        }
        return;
    }
    if let Ok(spec) = std::env::var("RCYCLE_BENCH_MEASURE") {
        measure(&spec);
        return;
    }
    if let Ok(path) = std::env::var("RCYCLE_BENCH_PAIRED") {
        paired::run(&path);
        return;
    }
    if let Ok(path) = std::env::var("RCYCLE_BENCH_WRITE") {
        write_md::write(&path);
        return;
    }

    let args: Vec<String> = std::env::args().collect();
    let bench_mode = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
    let sizes = match std::env::var("RCYCLE_BENCH_SIZE").as_deref() {
        Ok("tiny") => Sizes::tiny(),
        Ok("full") => Sizes::full(),
        _ if bench_mode => Sizes::full(),
        _ => Sizes::tiny(),
    };
    let secs = |var: &str, default: f64| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs_f64(secs("RCYCLE_BENCH_WARMUP", 1.0)))
        .measurement_time(Duration::from_secs_f64(secs(
            "RCYCLE_BENCH_MEASURE_TIME",
            3.0,
        )))
        .configure_from_args();
    for w in WORKLOADS {
        bench_workload(&mut c, w, &sizes);
    }
    c.final_summary();
}
