//! A size guard. The release `.wasm` is a tracked figure (README's
//! *Figures*, BENCHMARKS.md's *Size*): a change that grows it past the
//! guard fails here, so every addition is priced in the commit that makes
//! it. When a feature earns the bytes, raise the guard in the same commit,
//! with the new figure and what it bought in BENCHMARKS.md.

/// 350,287 bytes with conversation records that expire (BENCHMARKS.md),
/// plus room for small mends.
const GUARD: u64 = 360_000;

#[test]
fn the_component_stays_under_its_size_guard() {
    let size = std::fs::metadata(host_test::COMPONENT).unwrap().len();
    assert!(
        size <= GUARD,
        "the release .wasm is {size} bytes, past its guard of {GUARD}: say in BENCHMARKS.md what the bytes bought and raise the guard, or take them back"
    );
}
