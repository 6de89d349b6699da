//! Replays the fuzz corpus (`fuzz/corpus/<target>/*`, grown by the long
//! libFuzzer runs of `fuzz/run.sh` and holding every input that once found
//! a bug) through the same functions the fuzz targets call, on the stable
//! toolchain: a regression in any parser that reads outside input fails
//! here, without libFuzzer. Then a short mutation run of every target from
//! that corpus, the short fuzz run `.ci/run` makes.

use std::path::{Path, PathBuf};

#[test]
fn every_corpus_input_passes_its_target() {
    let mut total = 0;
    let mut failures = Vec::new();
    for (name, target) in tern::fuzzing::TARGETS {
        for (file, data) in read_corpus(name) {
            total += 1;
            if std::panic::catch_unwind(|| target(&data)).is_err() {
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(failures.is_empty(), "inputs that fail: {failures:#?}");
    eprintln!("{total} corpus inputs replayed");
}

/// The short fuzz run of every target that `.ci/run` makes: mutations of the
/// corpus inputs in libFuzzer's manner (bit flips, interesting bytes,
/// inserted and erased ranges, tokens of the protocols, splices of two
/// inputs; one to five stacked), `TERN_FUZZ_RUNS` per target (default
/// 25,000), from a fixed seed so a failure repeats (`TERN_FUZZ_SEED` picks
/// another). Unguided, so it is no replacement for `fuzz/run.sh`'s long
/// libFuzzer runs; it catches a parser change that panics near known input.
/// Failing inputs are written under `target/fuzz-failures/`.
#[test]
fn short_mutation_run_of_every_target() {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    let runs = env_number("TERN_FUZZ_RUNS", 25_000);
    let seed = env_number("TERN_FUZZ_SEED", 0x7e2f_5eed);
    let failures_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
    let mut failures = Vec::new();
    for (name, target) in tern::fuzzing::TARGETS {
        let corpus: Vec<Vec<u8>> = read_corpus(name).into_iter().map(|(_, d)| d).collect();
        let mut rng = StdRng::seed_from_u64(seed ^ fnv(name.as_bytes()));
        for run in 0..runs {
            let mut input = corpus[rng.random_range(0..corpus.len())].clone();
            for _ in 0..rng.random_range(1..=5) {
                mutate(&mut input, &corpus, &mut rng);
            }
            if std::panic::catch_unwind(|| target(&input)).is_err() {
                std::fs::create_dir_all(&failures_dir).expect("failures folder");
                let file = failures_dir.join(format!("{name}-{seed:x}-{run}"));
                std::fs::write(&file, &input).expect("write failing input");
                failures.push(file.display().to_string());
            }
        }
    }
    assert!(
        failures.is_empty(),
        "inputs that fail (seed {seed:#x}): {failures:#?}"
    );
    eprintln!("{runs} mutated inputs per target, seed {seed:#x}");
}

/// A number from the environment, decimal or `0x` hexadecimal (the seed is
/// printed in hex).
fn env_number(key: &str, default: u64) -> u64 {
    let Ok(v) = std::env::var(key) else {
        return default;
    };
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    }
    .unwrap_or_else(|_| panic!("{key}={v} is not a number"))
}

/// A target's corpus files (sorted) and their bytes; a file a running
/// fuzzer has just reduced away is skipped.
fn read_corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    let corpus: Vec<_> = files
        .into_iter()
        .filter_map(|f| std::fs::read(&f).ok().map(|d| (f, d)))
        .collect();
    assert!(!corpus.is_empty(), "no corpus for {target}");
    corpus
}

/// FNV-1a, to give each target its own stream from one seed.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Bytes and words the parsers give meaning to.
#[rustfmt::skip]
const TOKENS: &[&[u8]] = &[
    b"\r\n", b"\r\n.\r\n", b"\n", b"\r", b"\0", b".", b":", b"<", b">", b"@", b"\"", b"\\",
    b" ", b"\t", b"=", b"[", b"]", b"(", b")", b",", b";", b"+", b"/", b"\r\n\r\n",
    b"MAIL FROM:", b"RCPT TO:", b"BDAT ", b" LAST", b"SIZE=", b"BODY=8BITMIME", b"SMTPUTF8",
    b"AUTH=", b"RET=HDRS", b"ENVID=", b"NOTIFY=SUCCESS,FAILURE", b"ORCPT=rfc822;", b"[IPv6:",
    b"postmaster", b"=?utf-8?B?", b"?=", b"Subject: ", b"\r\n ", b"Content-Type: ",
    b"boundary=", b"--", b"[[", b"]]", b"= \"", b"true", b"0x", b"\xff", b"\xc3\xa9",
    b"18446744073709551616", b"-1", b"USER ", b"PASS ", b"RETR ", b"TOP ", b"250-", b"250 ",
    b"451 4.7.1 ", b"5.7.1", b"action:", b"reply:", b"header:",
];

fn mutate(input: &mut Vec<u8>, corpus: &[Vec<u8>], rng: &mut impl rand::Rng) {
    const MAX_LEN: usize = 64 * 1024;
    let len = input.len();
    match rng.random_range(0..8) {
        0 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] ^= 1 << rng.random_range(0..8);
        }
        1 if len > 0 => {
            let i = rng.random_range(0..len);
            input[i] = rng.random();
        }
        2 => {
            let token = TOKENS[rng.random_range(0..TOKENS.len())];
            let i = rng.random_range(0..=len);
            input.splice(i..i, token.iter().copied());
        }
        3 if len > 0 => {
            let start = rng.random_range(0..len);
            let end = rng.random_range(start..=len.min(start + 64));
            input.drain(start..end);
        }
        4 if len > 0 => {
            let start = rng.random_range(0..len);
            let end = rng.random_range(start..=len.min(start + 256));
            let copy = input[start..end].to_vec();
            let at = rng.random_range(0..=len);
            let times = if rng.random_range(0..8) == 0 {
                rng.random_range(2..64)
            } else {
                1
            };
            for _ in 0..times {
                input.splice(at..at, copy.iter().copied());
            }
        }
        5 => {
            let other = &corpus[rng.random_range(0..corpus.len())];
            let cut = rng.random_range(0..=len);
            let from = rng.random_range(0..=other.len());
            input.truncate(cut);
            input.extend_from_slice(&other[from..]);
        }
        6 if len > 0 => input.truncate(rng.random_range(0..len)),
        _ => {
            let n = rng.random_range(1..=8);
            let i = rng.random_range(0..=len);
            let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
            input.splice(i..i, bytes);
        }
    }
    input.truncate(MAX_LEN);
}
