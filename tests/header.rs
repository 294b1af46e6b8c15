//! The committed C header is exactly what the pinned cbindgen generates from the sources (with
//! the C89 rewrite below), and its version macros match Cargo.toml. A stale header is how C
//! users get an ABI that differs from the library (quiche#1556): this test fails instead.
//!
//! Regenerate the header with `DPS_MQTT_REGENERATE_HEADER=1 cargo test -p dps-mqtt --test header`.

use std::path::{Path, PathBuf};
use std::process::Command;

const CBINDGEN_VERSION: &str = "0.29.4";
const HEADER: &str = "include/dps_mqtt.h";
const REGENERATE: &str = "DPS_MQTT_REGENERATE_HEADER=1 cargo test -p dps-mqtt --test header";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn install_hint() -> String {
    format!(
        "install the pinned generator with `cargo install cbindgen --version {CBINDGEN_VERSION} --locked` \
         (tools/ensure-deps.sh does it), then regenerate with `{REGENERATE}`"
    )
}

/// `$CBINDGEN`, else `cbindgen` on PATH, else cargo's install directory.
fn cbindgen() -> PathBuf {
    if let Some(p) = std::env::var_os("CBINDGEN") {
        return PathBuf::from(p);
    }
    let on_path = Command::new("cbindgen").arg("--version").output();
    if on_path.is_ok_and(|o| o.status.success()) {
        return PathBuf::from("cbindgen");
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    cargo_home.join("bin").join("cbindgen")
}

fn committed_header() -> String {
    std::fs::read_to_string(root().join(HEADER))
        .unwrap_or_else(|e| panic!("cannot read {HEADER}: {e}"))
}

#[test]
fn header_is_what_the_pinned_cbindgen_generates() {
    let bin = cbindgen();
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {}", bin.display(), install_hint()));
    let version = String::from_utf8_lossy(&version.stdout);
    assert_eq!(
        version.trim(),
        format!("cbindgen {CBINDGEN_VERSION}"),
        "wrong cbindgen version at {}; {}",
        bin.display(),
        install_hint()
    );

    let fresh = std::env::temp_dir().join(format!("dps_mqtt-{}.h", std::process::id()));
    let out = Command::new(&bin)
        .current_dir(root())
        .args([
            "--config",
            "cbindgen.toml",
            "--crate",
            "dps-mqtt",
            "--quiet",
            "--output",
        ])
        .arg(&fresh)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {}", bin.display(), install_hint()));
    let generated = std::fs::read_to_string(&fresh);
    let _ = std::fs::remove_file(&fresh);
    assert!(
        out.status.success(),
        "cbindgen failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated =
        c89_clean(&generated.unwrap_or_else(|e| panic!("cbindgen wrote no header: {e}")));
    if std::env::var_os("DPS_MQTT_REGENERATE_HEADER").is_some() {
        std::fs::write(root().join(HEADER), &generated)
            .unwrap_or_else(|e| panic!("cannot write {HEADER}: {e}"));
    }

    let committed = committed_header();
    if generated != committed {
        let first_difference = generated
            .lines()
            .zip(committed.lines())
            .enumerate()
            .find(|(_, (g, c))| g != c)
            .map_or_else(
                || "one is a prefix of the other".to_owned(),
                |(n, (g, c))| format!("line {}: generated {g:?}, committed {c:?}", n + 1),
            );
        panic!("{HEADER} is stale ({first_difference}); regenerate it with `{REGENERATE}` and commit it");
    }
}

/// cbindgen 0.29.4 writes two things C89/C90 refuses, and has no setting to avoid them: a `//`
/// comment after the `#endif` of each guard it emits (`cpp_compat`, and the C23 fixed-type
/// guard of every `#[repr(u32)]` enum, which is there whatever `cpp_compat` says) and after
/// the `extern "C"` brace, and a comma after every enumerator, the last one included. The
/// committed header is cbindgen's output with exactly those rewritten: `/* */` comments and no
/// comma before an enum's closing brace. c-tests/header_c89.c checks the result compiles.
fn c89_clean(generated: &str) -> String {
    let lines: Vec<&str> = generated.lines().collect();
    let mut out = String::with_capacity(generated.len());
    for (i, line) in lines.iter().enumerate() {
        let code_then_comment = line
            .split_once("//")
            .filter(|(code, _)| code.starts_with('#') || code.trim_end() == "}");
        if let Some((code, comment)) = code_then_comment {
            out.push_str(&format!("{code}/*{comment} */"));
        } else if line.ends_with(',') && lines.get(i + 1) == Some(&"};") {
            out.push_str(&line[..line.len() - 1]);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// The value of `#define NAME value` in the header.
fn define(header: &str, name: &str) -> Option<String> {
    header.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("#define") && words.next() == Some(name))
            .then(|| words.next().unwrap_or_default().to_owned())
    })
}

#[test]
fn version_macros_match_cargo_toml() {
    let header = committed_header();
    for (name, want) in [
        ("DPS_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("DPS_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("DPS_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        assert_eq!(
            define(&header, name).as_deref(),
            Some(want),
            "{name} in {HEADER} differs from Cargo.toml's version {}",
            env!("CARGO_PKG_VERSION")
        );
    }
}

#[test]
fn io_sentinels_are_in_the_header() {
    let header = committed_header();
    assert!(define(&header, "DPS_IO_WOULD_BLOCK").is_some());
    assert!(define(&header, "DPS_IO_ERROR").is_some());
}

/// The C names a header line declares at file scope: macros, types, functions.
fn declared_names(line: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.trim_start_matches(['*', '('])
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["#define", name, ..] => vec![ident(name)],
        ["enum" | "struct", name, ..] => vec![ident(name)],
        ["typedef", "struct" | "enum", tag, rest @ ..] => {
            let mut names = vec![ident(tag)];
            names.extend(rest.last().map(|n| ident(n)));
            names
        }
        ["typedef", ..] if line.contains("(*") => line
            .split("(*")
            .nth(1)
            .map(|rest| vec![ident(rest)])
            .unwrap_or_default(),
        ["typedef", .., name] => vec![ident(name)],
        _ if line.contains('(') && !line.starts_with('#') => {
            let before = line.split('(').next().unwrap_or_default();
            before
                .split_whitespace()
                .last()
                .map(ident)
                .into_iter()
                .collect()
        }
        _ => Vec::new(),
    }
}

#[test]
fn every_declared_name_has_the_library_prefix() {
    let header = committed_header();
    let mut in_comment = false;
    let mut checked = 0;
    for line in header.lines() {
        let starts_comment = line.trim_start().starts_with("/*");
        if starts_comment || in_comment {
            in_comment = !line.contains("*/");
            continue;
        }
        // File-scope declarations start in column 0; members and enumerators are indented.
        if line.starts_with([' ', '}', '#']) && !line.starts_with("#define") {
            continue;
        }
        for name in declared_names(line) {
            if name.is_empty() || name == "extern" {
                continue;
            }
            checked += 1;
            assert!(
                name.starts_with("dps_") || name.starts_with("DPS_"),
                "{HEADER} declares `{name}` without the dps_/DPS_ prefix (line: {line:?}); \
                 exclude it in cbindgen.toml or make it private"
            );
        }
    }
    assert!(
        checked > 40,
        "only {checked} names found: the parser missed the header's shape"
    );
}

/// Every error code reaches C users with its hint: the header documents each `DPS_ERR_*`
/// enumerator with a "What to do:" line, the text `dps_result_hint` returns.
#[test]
fn every_error_code_in_the_header_documents_what_to_do() {
    let header = committed_header();
    let mut doc = String::new();
    let mut codes = 0;
    for line in header.lines().map(str::trim) {
        if line.starts_with("DPS_ERR_") && line.contains(" = ") {
            let name = line.split_whitespace().next().unwrap_or_default();
            assert!(
                doc.contains("What to do: "),
                "{HEADER}: {name} has no \"What to do:\" line in its doc comment"
            );
            codes += 1;
        }
        if line.starts_with("/**") {
            doc.clear();
        }
        doc.push_str(line);
        doc.push('\n');
    }
    assert!(
        codes > 50,
        "only {codes} error codes found: the parser missed the enum's shape"
    );
}
