//! Replays the fuzz corpus (`fuzz/corpus/<target>/*`, grown by the long
//! libFuzzer runs of `fuzz/run.sh` and holding every input that once found
//! a bug) through the same functions the fuzz targets call, on the stable
//! toolchain: a regression in any parser that reads outside input fails
//! here, without libFuzzer.

use std::path::Path;

#[test]
fn every_corpus_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut total = 0;
    let mut failures = Vec::new();
    for (name, target) in tern::fuzzing::TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("corpus entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for {name}");
        for file in files {
            // A file a running fuzzer has just reduced away is skipped.
            let Ok(data) = std::fs::read(&file) else {
                continue;
            };
            total += 1;
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "inputs that fail: {failures:#?}");
    eprintln!("{total} corpus inputs replayed");
}
