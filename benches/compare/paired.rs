//! `RCYCLE_BENCH_PAIRED=path`: every workload measured again with the
//! implementations *interleaved*, for ratios that survive a machine whose
//! speed drifts.
//!
//! criterion measures one implementation for a few seconds, then the next.
//! On a shared 2-core VM whose speed moves by up to 2x from one minute to
//! the next (seen on this machine: the same binary measured 104 ns and
//! 190 ns a collection, minutes apart), two medians taken 20 s apart can
//! differ by more than the difference between the implementations. Here each
//! *round* runs one sample of every implementation, one after the other (in
//! an order that rotates from round to round), so the implementations of a
//! round see the same machine; a round's ratio `rcycle / X` compares two
//! samples taken within milliseconds. The report uses the median over rounds
//! of those per-round ratios.
//!
//! Round 1 runs every implementation once; implementations more than three
//! times slower than the fastest peer in it cannot be the fastest peer and
//! leave the rounds (their round-1 time is reported), which keeps the run
//! short. A sample is as many iterations as take about 2 ms (one, except for
//! the latency workload). Each iteration is checked exactly as in criterion:
//! every node it creates must be dropped. Rounds go on until the group's time
//! budget (`RCYCLE_BENCH_PAIRED_SECS`, 4 s) is spent, at least 7 and at most
//! 200 rounds. One JSON line per workload is written to `path`. Sizes are
//! the full ones unless `RCYCLE_BENCH_SIZE=tiny` (as `.ci/run` runs it, to
//! check that it works). `RCYCLE_BENCH_PAIRED_GROUPS=churn,ring` runs only
//! those workloads (for quick A/B comparisons; `benches/run.sh` runs all).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{LiveGraph, Sizes};
use crate::{
    live_graph, run_checked, skipped, supported, Body, Imp, Workload, IMPS, PEERS, WORKLOADS,
};

/// One implementation's part of a group's rounds.
struct Runner<'a> {
    imp: &'a Imp,
    graph: Option<Box<dyn LiveGraph>>,
    /// Iterations per sample.
    batch: usize,
    /// Nanoseconds per iteration, one per round it took part in.
    samples: Vec<f64>,
}

impl<'a> Runner<'a> {
    fn new(w: &Workload, imp: &'a Imp, s: &Sizes) -> Runner<'a> {
        let graph = match w.body {
            Body::Once(_) => None,
            Body::Idle => Some(live_graph(imp, s, true)),
            Body::Latency => Some(live_graph(imp, s, false)),
        };
        Runner {
            imp,
            graph,
            batch: 1,
            samples: Vec::new(),
        }
    }

    /// Runs one sample; returns (and records) nanoseconds per iteration.
    fn sample(&mut self, w: &Workload, s: &Sizes) -> f64 {
        let what = format!("{}/{}", w.group, self.imp.name);
        let start = Instant::now();
        for _ in 0..self.batch {
            match (&w.body, &self.graph) {
                (Body::Once(f), _) => run_checked(|| f(self.imp, s).unwrap(), &what),
                (Body::Idle, Some(g)) => g.touch_and_collect(s.idle_rounds),
                (Body::Latency, Some(_)) => run_checked(self.imp.dead_pair, &what),
                _ => unreachable!("live graph built in new"),
            }
        }
        let ns = start.elapsed().as_nanos() as f64 / self.batch as f64;
        self.samples.push(ns);
        ns
    }

    /// Drops the live graph (if any), checking that every node went.
    fn teardown(&mut self, group: &str) {
        if let Some(g) = self.graph.take() {
            run_checked(|| g.teardown(), &format!("{group}/{}", self.imp.name));
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs the interleaved rounds of every workload and writes `path`.
pub fn run(path: &str) {
    // Full size unless told otherwise (CI runs it tiny, to check it works).
    let s = match std::env::var("RCYCLE_BENCH_SIZE").as_deref() {
        Ok("tiny") => Sizes::tiny(),
        _ => Sizes::full(),
    };
    let budget = Duration::from_secs_f64(
        std::env::var("RCYCLE_BENCH_PAIRED_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(4.0),
    );
    // RCYCLE_BENCH_PAIRED_GROUPS=a,b: only those workloads (for A/B runs).
    let only = std::env::var("RCYCLE_BENCH_PAIRED_GROUPS").ok();
    let wanted = |group: &str| {
        only.as_deref()
            .is_none_or(|l| l.split(',').any(|g| g == group))
    };
    let mut out = String::new();
    for w in WORKLOADS.iter().filter(|w| wanted(w.group)) {
        let mut runners: Vec<Runner> = IMPS
            .iter()
            .filter(|imp| supported(w, imp) && !skipped(w.group, imp.name))
            .map(|imp| Runner::new(w, imp, &s))
            .collect();
        // Round 1: everybody once.
        let first: Vec<f64> = runners.iter_mut().map(|r| r.sample(w, &s)).collect();
        let fastest_peer = runners
            .iter()
            .zip(&first)
            .filter(|(r, _)| PEERS.contains(&r.imp.name))
            .map(|(_, &t)| t)
            .fold(f64::INFINITY, f64::min);
        let mut left_out = BTreeMap::new();
        for (r, &t) in runners.iter_mut().zip(&first) {
            let is_peer = PEERS.contains(&r.imp.name);
            if is_peer && t > 3.0 * fastest_peer {
                left_out.insert(r.imp.name.to_string(), t);
                r.teardown(w.group);
            }
            r.batch = ((2e6 / t).ceil() as usize).clamp(1, 100_000);
        }
        runners.retain(|r| !left_out.contains_key(r.imp.name));
        let start = Instant::now();
        let mut rounds = 1;
        while (start.elapsed() < budget || rounds < 7) && rounds < 200 {
            let n = runners.len();
            for k in 0..n {
                runners[(rounds + k) % n].sample(w, &s);
            }
            rounds += 1;
        }
        let me = runners
            .iter()
            .position(|r| r.imp.name == "rcycle")
            .expect("rcycle runs every workload");
        let mut imps = serde_json::Map::new();
        for r in &runners {
            // Per-round ratio rcycle / this implementation.
            let ratios: Vec<f64> = runners[me]
                .samples
                .iter()
                .zip(&r.samples)
                .map(|(a, b)| a / b)
                .collect();
            imps.insert(
                r.imp.name.to_string(),
                json!({
                    "median_ns": median(r.samples.clone()),
                    "ratio": median(ratios),
                    "samples": r.samples.len(),
                    "batch": r.batch,
                }),
            );
        }
        for r in &mut runners {
            r.teardown(w.group);
        }
        let line = json!({
            "group": w.group,
            "rounds": rounds,
            "imps": imps,
            "left_out_ns": left_out,
        });
        eprintln!("paired {}: {} rounds", w.group, rounds);
        let _ = writeln!(out, "{line}");
    }
    std::fs::write(path, out).expect("write the paired results");
}

/// The interleaved results, as [`run`] wrote them.
pub struct Paired {
    groups: BTreeMap<String, Value>,
}

impl Paired {
    pub fn load(path: &std::path::Path) -> Paired {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let groups = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| Some((v["group"].as_str()?.to_string(), v)))
            .collect();
        Paired { groups }
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn rounds(&self, group: &str) -> Option<u64> {
        self.groups.get(group)?["rounds"].as_u64()
    }

    /// Median over rounds of `rcycle / imp`.
    pub fn ratio(&self, group: &str, imp: &str) -> Option<f64> {
        self.groups.get(group)?["imps"][imp]["ratio"].as_f64()
    }

    pub fn median_ns(&self, group: &str, imp: &str) -> Option<f64> {
        self.groups.get(group)?["imps"][imp]["median_ns"].as_f64()
    }

    /// The peer rcycle compares worst with among those that stayed in the
    /// rounds (the highest median ratio `rcycle / peer`): the fastest peer,
    /// as the rounds saw it.
    pub fn fastest_peer(&self, group: &str) -> Option<&'static str> {
        PEERS
            .iter()
            .filter_map(|p| self.ratio(group, p).map(|r| (r, *p)))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, p)| p)
    }

    /// Peers left out after round 1, with their round-1 time.
    pub fn left_out(&self, group: &str) -> Vec<(String, f64)> {
        self.groups
            .get(group)
            .and_then(|v| v["left_out_ns"].as_object())
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
                    .collect()
            })
            .unwrap_or_default()
    }
}
