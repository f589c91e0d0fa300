//! Malformed input never panics the loader and always yields a located error.

use rayconform::scenario::{LoadErrors, load_str};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

const GOOD: &str = r#"apiVersion: rayconform.dev/v1alpha1
kind: Scenario
metadata:
  name: fuzz-base
  tags: [a, b]
spec:
  targets: [lab]
  certificates: { ca: ca-tls }
  steps:
    - probe:
        tcp: { address: "127.0.0.1:1", expect: refused }
      timeout: 5s
      retries: 1
    - wait: { rayCluster: rc, condition: HeadPodReady, timeout: 5m }
"#;

/// Loads `text`; a panic fails the test, an Ok is returned as None.
fn try_load(text: &str) -> Option<LoadErrors> {
    let root = Path::new(".");
    let result = catch_unwind(AssertUnwindSafe(|| {
        load_str(Path::new("f.yaml"), text, root)
    }));
    match result {
        Ok(Ok(_)) => None,
        Ok(Err(errors)) => Some(errors),
        Err(_) => panic!("loader panicked on input:\n{text:?}"),
    }
}

fn assert_located(text: &str, errors: &LoadErrors) {
    assert!(!errors.0.is_empty(), "an Err without errors for {text:?}");
    for e in &errors.0 {
        assert!(
            e.line > 0 && e.column > 0,
            "unlocated error {e} for input {text:?}"
        );
        assert!(!e.message.trim().is_empty(), "empty message for {text:?}");
    }
}

#[test]
fn the_base_document_is_valid() {
    assert!(try_load(GOOD).is_none(), "{:?}", try_load(GOOD));
}

#[test]
fn every_truncation_is_handled() {
    let mut errs = 0;
    for (cut, _) in GOOD.char_indices() {
        if let Some(e) = try_load(&GOOD[..cut]) {
            assert_located(&GOOD[..cut], &e);
            errs += 1;
        }
    }
    assert!(
        errs > GOOD.len() / 2,
        "most truncations are invalid; only {errs} were"
    );
}

#[test]
fn swapping_values_for_wrong_types_is_handled() {
    let swaps = [
        "[]",
        "{}",
        "~",
        "-1",
        "99999999999999999999",
        "true",
        "\"\"",
        "&a x",
        "*nope",
        "!!binary AAAA",
        "|\n  x",
    ];
    let mut checked = 0;
    for (i, line) in GOOD.lines().enumerate() {
        let Some(colon) = line.find(": ") else {
            continue;
        };
        for swap in swaps {
            let mut lines: Vec<String> = GOOD.lines().map(str::to_string).collect();
            lines[i] = format!("{}: {swap}", &line[..colon]);
            let text = lines.join("\n");
            if let Some(e) = try_load(&text) {
                assert_located(&text, &e);
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} invalid variants");
}

#[test]
fn deeply_nested_input_is_refused_without_overflowing() {
    for depth in [1_000usize, 100_000] {
        let text = format!("apiVersion: {}{}", "[".repeat(depth), "]".repeat(depth));
        let e = try_load(&text).expect("nested garbage must not load");
        assert_located(&text, &e);
        let text = format!("{}x: 1", "- ".repeat(depth));
        let e = try_load(&text).expect("nested garbage must not load");
        assert_located(&text, &e);
    }
}

#[test]
fn huge_input_is_handled() {
    let mut text = GOOD.to_string();
    text.push_str("  finally:\n");
    for i in 0..20_000 {
        text.push_str(&format!("    - command: {{ argv: [echo, \"{i}\"] }}\n"));
    }
    text.push_str("    - bogus: 1\n");
    let e = try_load(&text).expect("the last step is invalid");
    assert_located(&text, &e);
}

#[test]
fn binary_garbage_is_handled() {
    // A small deterministic generator: no extra dependency, reproducible.
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    for len in [1usize, 7, 64, 512, 4096] {
        for _ in 0..40 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    (state >> 24) as u8
                })
                .collect();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            if let Some(e) = try_load(&text) {
                assert_located(&text, &e);
            }
            let with_nul = format!("{GOOD}\0");
            assert_located(&with_nul, &try_load(&with_nul).expect("NUL is refused"));
        }
    }
}

/// A scenario whose `expectJson` holds `depth` nested levels of ten
/// aliases each: type-correct, with 10^(depth+1) leaves when expanded.
fn alias_levels(depth: usize) -> String {
    let mut levels = String::from("            l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..=depth {
        let refs = vec![format!("*l{}", i - 1); 10].join(", ");
        levels.push_str(&format!("            l{i}: &l{i} [{refs}]\n"));
    }
    format!(
        "apiVersion: rayconform.dev/v1alpha1\nkind: Scenario\nmetadata:\n  name: alias-bomb\nspec:\n  targets: [lab]\n  steps:\n    - probe:\n        http:\n          url: http://127.0.0.1:1/\n          expectJson:\n{levels}"
    )
}

#[test]
fn an_alias_bomb_inside_a_valid_field_is_refused_by_the_budget() {
    // The same shape with few aliases loads: the field itself is valid.
    let small = alias_levels(2);
    assert!(try_load(&small).is_none(), "{:?}", try_load(&small));
    // `expectJson` takes any YAML value, so only the expansion budget can
    // stop 10^10 leaves.
    let bomb = alias_levels(9);
    let e = try_load(&bomb).expect("an alias bomb must not load");
    assert_located(&bomb, &e);
    let message = e.to_string();
    assert!(
        message.contains("resource budget was exceeded") && message.contains("aliases count"),
        "refused by the parser's budget, not by a type error, and said plainly: {message}"
    );
}
