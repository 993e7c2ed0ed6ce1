//! `live_report()`'s table against the text of the real guppy3.
//!
//! The expected tables below were printed by guppy3 3.1.7 (Python 3.11.7)
//! for the same counts, sizes and type names: `tests/fidelity/guppy_table.py`
//! feeds them to guppy's own formatter (a `Stat` loaded with `hpy().load`,
//! printed by the `SetFormat` and printer that print `hpy().heap().bytype`)
//! and prints its output; `hpy().Nothing` is the empty set. Only rcycle's own
//! trailer line (the collector's counters) is added here.

use rcycle::report::{LiveReport, ReportRow};

fn report(rows: &[(usize, usize, &str)]) -> LiveReport {
    LiveReport::from_rows(
        rows.iter()
            .map(|&(count, size, kind)| ReportRow {
                kind: kind.to_string(),
                count,
                size,
                retained: None,
            })
            .collect(),
    )
}

/// rcycle's line after guppy's table, for a report made by `from_rows`.
const COUNTERS: &str = "Collector: 0 collections, 0 objects freed by them, 0 candidates waiting, automatic collection off.";

const TWELVE: [(usize, usize, &str); 12] = [
    (1, 305, "app::Dispatcher"),
    (3, 205, "app::Iq"),
    (9, 125, "app::Node"),
    (21, 115, "u64"),
    (37, 85, "alloc::string::String"),
    (41, 55, "u32"),
    (7, 45, "u16"),
    (5, 25, "i64"),
    (13, 15, "i32"),
    (27, 10, "u8"),
    (17, 10, "bool"),
    (19, 5, "char"),
];

#[test]
fn halves_round_to_even_and_twelve_rows_show_ten() {
    // guppy: 30.5 % -> 30, 12.5 % -> 12, 11.5 % -> 12, 63.5 % -> 64, 0.5 % -> 0.
    let expected = "\
Partition of a set of 200 objects. Total size = 1000 bytes.
 Index  Count   %     Size   % Cumulative  % Type
     0      1   0      305  30       305  30 app::Dispatcher
     1      3   2      205  20       510  51 app::Iq
     2      9   4      125  12       635  64 app::Node
     3     21  10      115  12       750  75 u64
     4     37  18       85   8       835  84 alloc::string::String
     5     41  20       55   6       890  89 u32
     6      7   4       45   4       935  94 u16
     7      5   2       25   2       960  96 i64
     8     13   6       15   2       975  98 i32
     9     27  14       10   1       985  98 u8
<2 more rows. Type e.g. '_.more' to view.>
";
    assert_eq!(report(&TWELVE).to_string(), format!("{expected}{COUNTERS}"));
}

#[test]
fn the_alternate_form_shows_every_row_like_guppys_all() {
    let expected = "\
Partition of a set of 200 objects. Total size = 1000 bytes.
 Index  Count   %     Size   % Cumulative  % Type
     0      1   0      305  30       305  30 app::Dispatcher
     1      3   2      205  20       510  51 app::Iq
     2      9   4      125  12       635  64 app::Node
     3     21  10      115  12       750  75 u64
     4     37  18       85   8       835  84 alloc::string::String
     5     41  20       55   6       890  89 u32
     6      7   4       45   4       935  94 u16
     7      5   2       25   2       960  96 i64
     8     13   6       15   2       975  98 i32
     9     27  14       10   1       985  98 u8
    10     17   8       10   1       995 100 bool
    11     19  10        5   0      1000 100 char
";
    assert_eq!(
        format!("{:#}", report(&TWELVE)),
        format!("{expected}{COUNTERS}")
    );
}

#[test]
fn ninety_nine_point_six_is_100_and_eleven_rows_are_all_shown() {
    let rows = [
        (1, 99600, "app::Dispatcher"),
        (70, 100, "app::Iq"),
        (8, 100, "app::Node"),
        (5, 50, "u64"),
        (4, 40, "alloc::string::String"),
        (3, 30, "u32"),
        (3, 25, "u16"),
        (2, 20, "i64"),
        (1, 15, "i32"),
        (1, 10, "u8"),
        (1, 5, "bool"),
    ];
    let expected = "\
Partition of a set of 99 objects. Total size = 99995 bytes.
 Index  Count   %     Size   % Cumulative  % Type
     0      1   1    99600 100     99600 100 app::Dispatcher
     1     70  71      100   0     99700 100 app::Iq
     2      8   8      100   0     99800 100 app::Node
     3      5   5       50   0     99850 100 u64
     4      4   4       40   0     99890 100 alloc::string::String
     5      3   3       30   0     99920 100 u32
     6      3   3       25   0     99945 100 u16
     7      2   2       20   0     99965 100 i64
     8      1   1       15   0     99980 100 i32
     9      1   1       10   0     99990 100 u8
    10      1   1        5   0     99995 100 bool
";
    assert_eq!(report(&rows).to_string(), format!("{expected}{COUNTERS}"));
}

#[test]
fn one_object_is_singular() {
    let expected = "\
Partition of a set of 1 object. Total size = 147 bytes.
 Index  Count   %     Size   % Cumulative  % Type
     0      1 100      147 100       147 100 leak_hunt::Dispatcher
";
    assert_eq!(
        report(&[(1, 147, "leak_hunt::Dispatcher")]).to_string(),
        format!("{expected}{COUNTERS}")
    );
}

#[test]
fn the_empty_set_is_nothing() {
    assert_eq!(report(&[]).to_string(), format!("<Nothing>\n{COUNTERS}"));
}
