//! One version everywhere a user or a tool reads it: Cargo.toml, the header's macros,
//! `dps_version()`, the pkg-config file and the CMake package version (as CMake generates
//! them), the Python package and the changelog's latest release. A release that bumps one
//! and forgets another fails here, naming the file that disagrees.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::process::Command;

const CARGO_VERSION: &str = env!("CARGO_PKG_VERSION");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The text between the first pair of double quotes in `line`.
fn quoted(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once('"')?;
    rest.split_once('"').map(|(value, _)| value)
}

/// `#define NAME value` in the header.
fn header_define(header: &str, name: &str) -> Option<String> {
    header.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some("#define") && words.next() == Some(name))
            .then(|| words.next().unwrap_or_default().to_owned())
    })
}

/// The header's three macros, joined as a version string.
fn header_version(header: &str) -> String {
    [
        "DPS_VERSION_MAJOR",
        "DPS_VERSION_MINOR",
        "DPS_VERSION_PATCH",
    ]
    .map(|name| header_define(header, name).unwrap_or_else(|| format!("<no {name}>")))
    .join(".")
}

/// `version = "..."` in the `[project]` table of a pyproject.toml.
fn pyproject_version(text: &str) -> Option<String> {
    let mut in_project = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_project = line == "[project]";
        } else if in_project && line.split('=').next().map(str::trim) == Some("version") {
            return quoted(line).map(str::to_owned);
        }
    }
    None
}

/// `__version__ = "..."` in a Python module.
fn python_dunder_version(text: &str) -> Option<String> {
    text.lines()
        .find(|line| line.split('=').next().map(str::trim) == Some("__version__"))
        .and_then(quoted)
        .map(str::to_owned)
}

/// The newest released version in a Keep-a-Changelog file: the first `## [x.y.z]` heading
/// other than `[Unreleased]`.
fn changelog_version(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.strip_prefix("## "))
        .map(|heading| heading.split_whitespace().next().unwrap_or_default())
        .map(|word| word.trim_start_matches('[').trim_end_matches(']'))
        .find(|word| !word.eq_ignore_ascii_case("unreleased"))
        .map(str::to_owned)
}

/// `Version:` in a pkg-config file.
fn pc_version(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix("Version:"))
        .map(|v| v.trim().to_owned())
}

/// `set(PACKAGE_VERSION "...")` in a CMake package version file.
fn cmake_package_version(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .find(|line| line.starts_with("set(PACKAGE_VERSION \""))
        .and_then(quoted)
        .map(str::to_owned)
}

/// Configures the CMake project (library only: no examples, tests or emulator) in a scratch
/// directory and returns it: the pkg-config file and the package version file are written at
/// configure time, from `project(... VERSION ...)`, so they are checked as CMake makes them.
fn configure_cmake() -> PathBuf {
    let build = Path::new(env!("CARGO_TARGET_TMPDIR")).join("versions-cmake");
    let _ = std::fs::remove_dir_all(&build);
    let cmake = std::env::var_os("CMAKE").unwrap_or_else(|| "cmake".into());
    let out = Command::new(&cmake)
        .arg("-S")
        .arg(root())
        .arg("-B")
        .arg(&build)
        .args([
            "-DDPS_MQTT_BUILD_EXAMPLES=OFF",
            "-DDPS_MQTT_BUILD_TESTS=OFF",
            "-DDPS_MQTT_BUILD_EMULATOR=OFF",
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {cmake:?}: {e}; install CMake (tools/ensure-deps.sh does)")
        });
    assert!(
        out.status.success(),
        "cmake configure failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    build
}

/// What `dps_version()` returns, called through the crate as C calls it.
fn library_version() -> String {
    let version = dps_mqtt::ffi::helpers::dps_version();
    assert!(!version.is_null(), "dps_version() returned NULL");
    // SAFETY: dps_version returns a static, NUL-terminated string (checked non-NULL above).
    let version = unsafe { CStr::from_ptr(version) };
    version.to_string_lossy().into_owned()
}

#[test]
fn every_version_agrees_with_cargo_toml() {
    let header = read(&root().join("include/dps_mqtt.h"));
    let library = library_version();
    let build = configure_cmake();

    let found: Vec<(String, Option<String>)> = vec![
        (
            "include/dps_mqtt.h (DPS_VERSION_MAJOR/MINOR/PATCH)".into(),
            Some(header_version(&header)),
        ),
        ("dps_version() of the library".into(), Some(library)),
        (
            format!(
                "{} (generated from cmake/dps_mqtt.pc.in and CMakeLists.txt's project VERSION)",
                build.join("dps_mqtt.pc").display()
            ),
            pc_version(&read(&build.join("dps_mqtt.pc"))),
        ),
        (
            format!(
                "{} (CMake package version, from CMakeLists.txt's project VERSION)",
                build.join("dps_mqttConfigVersion.cmake").display()
            ),
            cmake_package_version(&read(&build.join("dps_mqttConfigVersion.cmake"))),
        ),
        (
            "python/pyproject.toml ([project] version)".into(),
            pyproject_version(&read(&root().join("python/pyproject.toml"))),
        ),
        (
            "python/dps_mqtt/__init__.py (__version__)".into(),
            python_dunder_version(&read(&root().join("python/dps_mqtt/__init__.py"))),
        ),
        (
            "CHANGELOG.md (latest released version)".into(),
            changelog_version(&read(&root().join("CHANGELOG.md"))),
        ),
    ];

    let disagreeing: Vec<String> = found
        .iter()
        .filter(|(_, version)| version.as_deref() != Some(CARGO_VERSION))
        .map(|(source, version)| match version {
            Some(v) => format!("  {source} says {v}"),
            None => format!("  {source} has no version this test can read"),
        })
        .collect();
    assert!(
        disagreeing.is_empty(),
        "Cargo.toml's version is {CARGO_VERSION}, but:\n{}",
        disagreeing.join("\n")
    );
}
