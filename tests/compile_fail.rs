//! Programs that must not compile (trybuild): the type-level half of the
//! soundness of `get_mut` and `objects::<T>()` (issue 19, section 1). Each
//! file in `tests/ui/` is compiled and must fail with the error recorded
//! beside it (`.stderr`).
//!
//! Skipped under Miri, and under AddressSanitizer (`RCYCLE_UNDER_SANITIZER`,
//! set by `.ci/run`): the check is a compiler error, the same in every build,
//! and trybuild would build the crate once more with the sanitizer flags.

#[test]
#[cfg_attr(miri, ignore = "compiles programs")]
fn lifetimes_cannot_be_shortened_through_gc() {
    if std::env::var_os("RCYCLE_UNDER_SANITIZER").is_some() {
        eprintln!("skipped under the sanitizer (see the file's docs)");
        return;
    }
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
