//! `RCYCLE_BENCH_WRITE=BENCHMARKS.md`: the report, from criterion's
//! estimates (`target/criterion/<group>/<implementation>/new/estimates.json`,
//! the median point estimate) and the runner's measurements (one JSON line
//! per workload and implementation, from `RCYCLE_BENCH_MEASURE` runs in
//! their own processes). Inputs, all set by `benches/run.sh`:
//! `RCYCLE_BENCH_CRITERION_DIR`, `RCYCLE_BENCH_MEASUREMENTS`,
//! `RCYCLE_BENCH_META` (a JSON object: date, machine, toolchain, settings)
//! and `RCYCLE_BENCH_NOTES` (markdown appended as the notes section).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::paired::Paired;
use crate::{Kind, IMPS, KNOWN_OVERFLOWS, PEERS, WORKLOADS};

/// The crates whose versions the report states (Cargo.lock names).
const CRATES: &[&str] = &[
    "rcycle",
    "bacon_rajan_cc",
    "rust-cc",
    "gcmodule",
    "dumpster",
    "gc",
    "criterion",
];

fn env_path(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

/// Median in nanoseconds of `group/bench`, if criterion measured it.
fn median(dir: &Path, group: &str, bench: &str) -> Option<f64> {
    let text =
        std::fs::read_to_string(dir.join(group).join(bench).join("new/estimates.json")).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    v["median"]["point_estimate"].as_f64()
}

fn fmt_time(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn fmt_mib(kib: f64) -> String {
    format!("{:.1}", kib / 1024.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "**met**"
    } else {
        "**missed**"
    }
}

struct Measurements {
    rows: BTreeMap<(String, String), Value>,
}

impl Measurements {
    fn load(path: &Path) -> Measurements {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let rows = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| {
                let g = v["group"].as_str()?.to_string();
                let i = v["imp"].as_str()?.to_string();
                Some(((g, i), v))
            })
            .collect();
        Measurements { rows }
    }

    fn get(&self, group: &str, imp: &str) -> Option<&Value> {
        self.rows.get(&(group.to_string(), imp.to_string()))
    }

    fn ok(&self, group: &str, imp: &str) -> bool {
        self.get(group, imp)
            .is_some_and(|v| v["status"].as_str() == Some("ok"))
    }

    fn peak_kib(&self, group: &str, imp: &str) -> Option<f64> {
        let v = self.get(group, imp)?;
        v["peak_kib"].as_f64()
    }

    fn base_kib(&self, group: &str, imp: &str) -> Option<f64> {
        self.get(group, imp)?["base_kib"].as_f64()
    }

    /// Peak minus the process's resident memory before the workload.
    fn growth_kib(&self, group: &str, imp: &str) -> Option<f64> {
        Some(self.peak_kib(group, imp)? - self.base_kib(group, imp)?)
    }

    fn crashed(&self, group: &str, imp: &str) -> Option<String> {
        let v = self.get(group, imp)?;
        if v["status"].as_str() == Some("crashed") {
            Some(format!(
                "exit status {} ({})",
                v["exit"],
                v["message"].as_str().unwrap_or("").trim()
            ))
        } else {
            None
        }
    }
}

fn crate_versions() -> Vec<(String, String)> {
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut out = Vec::new();
    let mut name = None;
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = Some(n.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("version = ") {
            if let Some(n) = name.take() {
                if CRATES.contains(&n.as_str()) {
                    out.push((n, v.trim_matches('"').to_string()));
                }
            }
        }
    }
    out.sort_by_key(|(n, _)| CRATES.iter().position(|c| c == n));
    out
}

pub fn write(path: &str) {
    let crit = env_path("RCYCLE_BENCH_CRITERION_DIR", "target/criterion");
    let m = Measurements::load(&env_path(
        "RCYCLE_BENCH_MEASUREMENTS",
        "target/rcycle-bench/measurements.jsonl",
    ));
    let meta: Value = std::fs::read_to_string(env_path(
        "RCYCLE_BENCH_META",
        "target/rcycle-bench/meta.json",
    ))
    .ok()
    .and_then(|t| serde_json::from_str(&t).ok())
    .unwrap_or(Value::Null);
    let paired = Paired::load(&env_path(
        "RCYCLE_BENCH_PAIRED_RESULTS",
        "target/rcycle-bench/paired.jsonl",
    ));
    let notes = std::fs::read_to_string(env_path("RCYCLE_BENCH_NOTES", "benches/notes.md"))
        .unwrap_or_default();
    let meta_s = |k: &str| meta[k].as_str().unwrap_or("?").to_string();

    let mut md = String::new();
    let w = &mut md;
    let _ = writeln!(w, "# Benchmarks\n");
    let _ = writeln!(
        w,
        "rcycle against `std::rc::Rc` and the cycle-collecting crates, one criterion \
         group per workload (issue 4). Written by `benches/run.sh` from one full run; \
         do not edit by hand (the notes at the end come from `benches/notes.md`).\n"
    );
    let _ = writeln!(w, "- date: {}", meta_s("date"));
    let _ = writeln!(
        w,
        "- machine: {} logical CPUs, {}, {}; stack limit {} KiB (benchmarks run on the main thread)",
        meta_s("nproc"),
        meta_s("cpu"),
        meta_s("kernel"),
        meta_s("stack_kib")
    );
    let _ = writeln!(w, "- rcycle commit: {}", meta_s("commit"));
    let _ = writeln!(w, "- toolchain: {}", meta_s("rustc"));
    let versions: Vec<String> = crate_versions()
        .into_iter()
        .map(|(n, v)| format!("{n} {v}"))
        .collect();
    let _ = writeln!(w, "- crates: {}", versions.join(", "));
    let _ = writeln!(
        w,
        "- criterion: {} samples per benchmark (flat sampling), {} s warm-up, {} s \
         measurement (reduced to keep the whole run short on this 2-core machine); \
         whole run took {}",
        meta_s("samples"),
        meta_s("warmup"),
        meta_s("measure"),
        meta_s("duration")
    );
    let _ = writeln!(w, "- command: `{}`\n", meta_s("command"));

    let _ = writeln!(
        w,
        "Times are criterion's median per iteration of the whole workload. Every \
         implementation's nodes carry a drop counter, and every iteration asserts that \
         exactly the nodes it created were dropped, so nobody wins by leaking; the \
         crate's own collection call is inside the timed work wherever cycles must be \
         freed, and `Rc` breaks its cycles by hand, also timed. \"Fastest peer\" is the \
         fastest of bacon_rajan_cc, rust-cc, gcmodule, dumpster and gc that ran the \
         workload. Peak RSS is `VmHWM` of a separate process that ran the workload \
         once at full size (it includes about 3 MiB of process baseline and, for the \
         last two workloads, the live graph).\n"
    );

    // Summary.
    let _ = writeln!(w, "## Summary\n");
    let mut head = String::from("| workload |");
    let mut sep = String::from("|---|");
    for imp in &IMPS {
        let _ = write!(head, " {} |", imp.name);
        sep += "---:|";
    }
    head += " rcycle / Rc | rcycle / fastest peer |";
    sep += "---:|---:|";
    let _ = writeln!(w, "{head}\n{sep}");
    let mut targets: Vec<(String, String, String)> = Vec::new();
    let mut sections = String::new();
    for wl in WORKLOADS {
        let times: Vec<Option<f64>> = IMPS
            .iter()
            .map(|i| median(&crit, wl.group, i.name))
            .collect();
        let t = |name: &str| {
            IMPS.iter()
                .position(|i| i.name == name)
                .and_then(|p| times[p])
        };
        let rc = t("Rc");
        let me = t("rcycle");
        let fastest = PEERS
            .iter()
            .filter_map(|p| t(p).map(|v| (v, *p)))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let mut row = format!("| {} |", wl.group);
        for (imp, time) in IMPS.iter().zip(&times) {
            let cell = match time {
                Some(v) => fmt_time(*v),
                None if m.crashed(wl.group, imp.name).is_some() => "overflows".into(),
                None if wl.group == "parent_weak" && imp.parent_weak.is_none() => "n/a".into(),
                None => "—".into(),
            };
            let _ = write!(row, " {cell} |");
        }
        let ratio_rc = me.zip(rc).map(|(a, b)| a / b);
        let ratio_peer = me.zip(fastest).map(|(a, (b, _))| a / b);
        let _ = writeln!(
            row,
            " {} | {} |",
            ratio_rc.map_or("—".into(), |r| format!("{r:.2}x")),
            ratio_peer.map_or("—".into(), |r| format!(
                "{r:.2}x ({})",
                fastest.map(|f| f.1).unwrap_or("")
            )),
        );
        w.push_str(&row);

        // The target of this workload.
        let (target, status) = match wl.kind {
            Kind::NoCycles => (
                "<= 1.0x Rc".to_string(),
                ratio_rc.map_or("not measured".into(), |r| {
                    format!("{} ({r:.2}x Rc)", verdict(r <= 1.0))
                }),
            ),
            Kind::CloneChurn => (
                "<= 1.3x Rc".to_string(),
                ratio_rc.map_or("not measured".into(), |r| {
                    format!("{} ({r:.2}x Rc)", verdict(r <= 1.3))
                }),
            ),
            Kind::Cycles => (
                "<= 0.7x fastest peer".to_string(),
                ratio_peer.map_or("not measured".into(), |r| {
                    format!(
                        "{} ({r:.2}x {}, {} vs {})",
                        verdict(r <= 0.7),
                        fastest.unwrap().1,
                        fmt_time(me.unwrap()),
                        fmt_time(fastest.unwrap().0)
                    )
                }),
            ),
            Kind::Latency => (
                "<= 1.0x fastest peer".to_string(),
                ratio_peer.map_or("not measured".into(), |r| {
                    format!(
                        "{} ({r:.2}x {}, {} vs {})",
                        verdict(r <= 1.0),
                        fastest.unwrap().1,
                        fmt_time(me.unwrap()),
                        fmt_time(fastest.unwrap().0)
                    )
                }),
            ),
        };
        // The interleaved rounds judge the target when they ran (see
        // `paired.rs`): criterion's ratio is shown beside it.
        let status = match paired_verdict(&paired, wl.group, wl.kind) {
            Some((ok, text)) => format!("{} ({text}; criterion: {status})", verdict(ok)),
            None => status,
        };
        targets.push((wl.group.to_string(), target, status));
        // Issue 23: every cycle workload at most 1.5x `Rc` breaking its
        // cycles by hand, judged on the interleaved rounds.
        if wl.kind == Kind::Cycles {
            let status = match paired.ratio(wl.group, "Rc") {
                Some(r) => format!(
                    "{} (interleaved: {r:.2}x Rc, median of {} rounds; criterion: {})",
                    verdict(r <= 1.5),
                    paired.rounds(wl.group).unwrap_or(0),
                    ratio_rc.map_or("—".into(), |r| format!("{r:.2}x Rc")),
                ),
                None => ratio_rc.map_or("not measured".into(), |r| {
                    format!("{} ({r:.2}x Rc)", verdict(r <= 1.5))
                }),
            };
            targets.push((
                wl.group.to_string(),
                "<= 1.5x Rc breaking its cycles by hand".to_string(),
                status,
            ));
        }

        // Its own section.
        let s = &mut sections;
        let _ = writeln!(s, "### {}: {}\n", wl.group, wl.title);
        let _ = writeln!(
            s,
            "| implementation | median | x Rc | x fastest peer | peak RSS (MiB) | status |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---|");
        for (imp, time) in IMPS.iter().zip(&times) {
            let peak = m.peak_kib(wl.group, imp.name).map_or("—".into(), fmt_mib);
            let status = if let Some(c) = m.crashed(wl.group, imp.name) {
                format!("stack overflow, not run: {c}")
            } else if wl.group == "parent_weak" && imp.parent_weak.is_none() {
                "n/a: no weak pointer".into()
            } else if time.is_some() && m.ok(wl.group, imp.name) {
                "ok, drop count checked".into()
            } else if time.is_some() {
                "ok (no memory measurement)".into()
            } else {
                "not measured".into()
            };
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} |",
                imp.name,
                time.map_or("—".into(), fmt_time),
                time.zip(rc)
                    .map_or("—".into(), |(a, b)| format!("{:.2}", a / b)),
                time.zip(fastest)
                    .map_or("—".into(), |(a, (b, _))| format!("{:.2}", a / b)),
                peak,
                status
            );
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(w);

    // Targets.
    let _ = writeln!(w, "## Targets\n");
    let _ = writeln!(w, "| target | workload | status |\n|---|---|---|");
    for (group, target, status) in &targets {
        let _ = writeln!(w, "| {target} | {group} | {status} |");
    }
    // RSS growth with automatic collection on: the cycle workloads' peaks
    // against Rc's, and many small cycles at 1x and 4x.
    let g1 = m.growth_kib("small_cycles", "rcycle");
    let g4 = m.growth_kib("small_cycles_x4", "rcycle");
    if let (Some(g1), Some(g4)) = (g1, g4) {
        let ok = g4 <= g1 * 1.25 + 1024.0;
        let _ = writeln!(
            w,
            "| no RSS growth, automatic collection on | small_cycles, 100k vs 400k cycles | {} (peak over baseline {} MiB at 100k, {} MiB at 400k) |",
            verdict(ok),
            fmt_mib(g1),
            fmt_mib(g4)
        );
    }
    let mut worse = Vec::new();
    for wl in WORKLOADS.iter().filter(|w| w.kind == Kind::Cycles) {
        if let (Some(me), Some(rc)) = (
            m.growth_kib(wl.group, "rcycle"),
            m.growth_kib(wl.group, "Rc"),
        ) {
            worse.push(format!(
                "{} {} vs Rc {}",
                wl.group,
                fmt_mib(me),
                fmt_mib(rc)
            ));
        }
    }
    if !worse.is_empty() {
        let _ = writeln!(
            w,
            "| (for reference) peak RSS over baseline, MiB | cycle workloads | {} |",
            worse.join("; ")
        );
    }
    let bytes = m.get("u64_objects", "rcycle");
    if let Some(b) = bytes {
        let rss = b["bytes_per_object"].as_f64().unwrap_or(f64::NAN);
        let acc = b["accounted_bytes_per_object"].as_f64().unwrap_or(f64::NAN);
        let _ = writeln!(
            w,
            "| <= 24 bytes per `Gc<u64>` | 1M `Gc<u64>` | {} ({rss:.1} bytes of RSS per object; the heap accounts {acc:.1}) |",
            verdict(rss <= 24.5)
        );
    }
    let overflows: Vec<String> = WORKLOADS
        .iter()
        .map(|w| w.group)
        .chain(crate::EXTRA_MEASUREMENTS.iter().copied())
        .filter(|g| m.crashed(g, "rcycle").is_some() || !m.ok(g, "rcycle"))
        .map(String::from)
        .collect();
    let _ = writeln!(
        w,
        "| no stack overflow on 8 MiB | every workload at full size, main thread | {} |",
        if overflows.is_empty() {
            format!(
                "{} (every rcycle run exited normally; stack limit {} KiB)",
                verdict(true),
                meta_s("stack_kib")
            )
        } else {
            format!("{}: {}", verdict(false), overflows.join(", "))
        }
    );
    let _ = writeln!(w);

    if !paired.is_empty() {
        write_paired(w, &paired);
    }

    // Memory per object.
    let _ = writeln!(w, "## Memory per pointer to a `u64`\n");
    let _ = writeln!(
        w,
        "1,000,000 objects allocated into a pre-sized `Vec`; resident memory growth \
         divided by the count, minus the handle's own size in the `Vec`.\n"
    );
    let _ = writeln!(w, "| implementation | bytes per object |\n|---|---:|");
    for imp in &IMPS {
        if let Some(v) = m.get("u64_objects", imp.name) {
            let _ = writeln!(
                w,
                "| {} | {} |",
                imp.name,
                v["bytes_per_object"]
                    .as_f64()
                    .map_or("—".into(), |b| format!("{b:.1}"))
            );
        }
    }
    let _ = writeln!(w);

    // Peak memory of many small cycles, x1 and x4.
    let _ = writeln!(w, "## RSS growth: many small cycles at 100k and 400k\n");
    let _ = writeln!(
        w,
        "Peak RSS over the process baseline (MiB). A collector that keeps every dead \
         pair until the final collection grows with the count.\n"
    );
    let _ = writeln!(
        w,
        "| implementation | 100k cycles | 400k cycles |\n|---|---:|---:|"
    );
    for imp in &IMPS {
        let a = m.growth_kib("small_cycles", imp.name);
        let b = m.growth_kib("small_cycles_x4", imp.name);
        let _ = writeln!(
            w,
            "| {} | {} | {} |",
            imp.name,
            a.map_or("—".into(), fmt_mib),
            b.map_or("—".into(), fmt_mib)
        );
    }
    let _ = writeln!(w);

    // Stack overflows.
    let _ = writeln!(w, "## Stack overflows\n");
    let mut crashed = Vec::new();
    for ((g, i), _) in m.rows.iter() {
        if let Some(c) = m.crashed(g, i) {
            crashed.push((g.clone(), i.clone(), c));
        }
    }
    if crashed.is_empty() {
        let _ = writeln!(w, "No implementation overflowed the stack.\n");
    } else {
        let _ = writeln!(
            w,
            "Each workload ran once per implementation at full size in its own process, \
             on the main thread (stack limit {} KiB). These processes were killed by a \
             stack overflow, so criterion does not run these pairs (a stack overflow \
             aborts the whole process, it cannot be caught):\n",
            meta_s("stack_kib")
        );
        for (g, i, c) in &crashed {
            let known = if KNOWN_OVERFLOWS.contains(&(g.as_str(), i.as_str())) {
                ""
            } else {
                " (not in KNOWN_OVERFLOWS: update benches/compare/main.rs)"
            };
            let _ = writeln!(w, "- {g} / {i}: {c}{known}");
        }
        let _ = writeln!(w);
    }

    // Reporter.
    let _ = writeln!(w, "## The reporter (rcycle only)\n");
    let mut any = false;
    if let Ok(dirs) = std::fs::read_dir(&crit) {
        let mut dirs: Vec<_> = dirs.flatten().map(|d| d.file_name()).collect();
        dirs.sort();
        for d in dirs {
            let d = d.to_string_lossy().to_string();
            if !d.starts_with("report") {
                continue;
            }
            for bench in ["live_report", "heap_graph_capture"] {
                if let Some(t) = median(&crit, &d, bench) {
                    any = true;
                    let n = d.trim_start_matches("report_").replace("_objects", "");
                    let _ = writeln!(w, "- `{bench}` over {n} live objects: {}", fmt_time(t));
                }
            }
        }
    }
    if any {
        let _ = writeln!(
            w,
            "\n(`benches/report.rs`: a tree of 1,000,000 live nodes, fan-out 8; target \
             for `live_report()`: 50 ms.)\n"
        );
    } else {
        let _ = writeln!(w, "Not measured in this run.\n");
    }

    // The reporter on a big heap against Python's tools (issue 20): the
    // section `benches/report_scale.sh` writes with RCYCLE_REPORT_WRITE.
    let _ = writeln!(w, "## The reporter at scale, against Python's tools\n");
    match std::fs::read_to_string(env_path(
        "RCYCLE_BENCH_REPORT_SCALE",
        "benches/report_scale.md",
    )) {
        Ok(text) => {
            let _ = writeln!(w, "{}\n", text.trim_end());
        }
        Err(_) => {
            let _ = writeln!(
                w,
                "Not measured (`RCYCLE_REPORT_WRITE=benches/report_scale.md benches/report_scale.sh`).\n"
            );
        }
    }

    // Build, drop and collect apart, against `Rc` (issue 23): the table
    // `cargo bench --bench phases` prints, which `benches/run.sh` saves.
    let _ = writeln!(w, "## Phases against `Rc`\n");
    match std::fs::read_to_string(env_path(
        "RCYCLE_BENCH_PHASES",
        "target/rcycle-bench/phases.md",
    )) {
        Ok(text) => {
            let _ = writeln!(w, "{}\n", text.trim_end());
        }
        Err(_) => {
            let _ = writeln!(
                w,
                "Not measured in this run (`cargo bench --bench phases`).\n"
            );
        }
    }

    let _ = writeln!(w, "## Workloads\n");
    md.push_str(&sections);
    if !notes.trim().is_empty() {
        md.push_str("## Notes\n\n");
        md.push_str(notes.trim());
        md.push('\n');
    }
    std::fs::write(path, md).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    eprintln!("wrote {path}");
}

/// The limit of a workload's target and whether it is taken against `Rc`
/// (else against the fastest peer).
fn limit(kind: Kind) -> (f64, bool) {
    match kind {
        Kind::NoCycles => (1.0, true),
        Kind::CloneChurn => (1.3, true),
        Kind::Cycles => (0.7, false),
        Kind::Latency => (1.0, false),
    }
}

/// The target's verdict from the interleaved rounds, if they ran.
fn paired_verdict(p: &Paired, group: &str, kind: Kind) -> Option<(bool, String)> {
    let rounds = p.rounds(group)?;
    let (limit, vs_rc) = limit(kind);
    let against = if vs_rc { "Rc" } else { p.fastest_peer(group)? };
    let r = p.ratio(group, against)?;
    Some((
        r <= limit,
        format!("interleaved: {r:.2}x {against}, median of {rounds} rounds"),
    ))
}

/// The section of the interleaved rounds.
fn write_paired(w: &mut String, p: &Paired) {
    let _ = writeln!(w, "## Interleaved rounds\n");
    let _ = writeln!(
        w,
        "The same workloads again, after criterion, in one process, with the \
         implementations interleaved: each round runs one sample of every \
         implementation (in an order that rotates), and a ratio is the median over \
         rounds of `rcycle / X` within a round, so that a drift of the machine's \
         speed between two criterion benchmarks cannot skew it (see \
         `benches/compare/paired.rs`). Peers more than 3x slower than the fastest \
         peer in round 1 leave the rounds. Every iteration's drop count is checked \
         as in criterion. The targets above are judged on these ratios.\n"
    );
    let _ = writeln!(
        w,
        "| workload | rounds | rcycle | Rc | rcycle / Rc | fastest peer | its median | rcycle / fastest peer | left out after round 1 (its time) |"
    );
    let _ = writeln!(w, "|---|---:|---:|---:|---:|---|---:|---:|---|");
    for wl in WORKLOADS {
        let g = wl.group;
        let Some(rounds) = p.rounds(g) else { continue };
        let t = |imp: &str| p.median_ns(g, imp).map_or("—".into(), fmt_time);
        let r = |imp: &str| p.ratio(g, imp).map_or("—".into(), |r| format!("{r:.2}x"));
        let peer = p.fastest_peer(g);
        let left: Vec<String> = p
            .left_out(g)
            .into_iter()
            .map(|(name, ns)| format!("{name} ({})", fmt_time(ns)))
            .collect();
        let _ = writeln!(
            w,
            "| {g} | {rounds} | {} | {} | {} | {} | {} | {} | {} |",
            t("rcycle"),
            t("Rc"),
            r("Rc"),
            peer.unwrap_or("—"),
            peer.map_or("—".into(), t),
            peer.map_or("—".into(), r),
            if left.is_empty() {
                "—".into()
            } else {
                left.join(", ")
            }
        );
    }
    let _ = writeln!(w);
}
