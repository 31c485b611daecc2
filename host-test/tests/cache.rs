//! The compiled-code cache: in its own directory (never beside the
//! `.wasm`), named stably, and a file that does not load is compiled again
//! and replaced, never trusted. (A test binary of its own: it sets
//! `SMS_CACHE_DIR` for the process.)

use host_test::engine;

#[test]
fn compiled_components_are_cached_apart_and_a_damaged_file_is_replaced() {
    let cache = tempfile::tempdir().unwrap();
    let tree = tempfile::tempdir().unwrap();
    // SAFETY: the only test in this process; nothing else reads the
    // environment meanwhile.
    unsafe { std::env::set_var("SMS_CACHE_DIR", cache.path()) };
    let wasm = tree.path().join("c.wasm");
    std::fs::copy(host_test::COMPONENT, &wasm).unwrap();
    let path = wasm.to_str().unwrap();
    let e = engine::engine().unwrap();
    engine::compiled(&e, path).unwrap();
    let files = |dir: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|f| f.unwrap().path())
            .collect()
    };
    assert_eq!(
        files(tree.path()),
        vec![wasm.clone()],
        "nothing beside the .wasm"
    );
    let cached = files(cache.path());
    assert_eq!(cached.len(), 1, "{cached:?}");
    let name = cached[0].file_name().unwrap().to_str().unwrap().to_owned();
    assert!(name.ends_with(".cwasm") && name.len() == 32 + 6, "{name}");
    let good = std::fs::metadata(&cached[0]).unwrap().len();
    // Damaged: compiled again, and the file replaced.
    std::fs::write(&cached[0], b"not machine code").unwrap();
    engine::compiled(&e, path).unwrap();
    assert_eq!(std::fs::metadata(&cached[0]).unwrap().len(), good);
    // The same bytes elsewhere find the same file.
    let again = tree.path().join("again.wasm");
    std::fs::copy(&wasm, &again).unwrap();
    engine::compiled(&e, again.to_str().unwrap()).unwrap();
    assert_eq!(files(cache.path()).len(), 1);
}
