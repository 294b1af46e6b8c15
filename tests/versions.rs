//! One version, and one license, everywhere a user or a tool reads them. The version: Cargo.toml,
//! the header's macros, `dps_version()`, the pkg-config files and the CMake package version
//! (as CMake generates them), the shared library's SONAME, the Python package, the changelog's
//! latest release and the packaging recipes. The license: Cargo.toml's, in every manifest and
//! recipe. A release that bumps one and forgets another fails here, naming what disagrees.

use std::ffi::CStr;
use std::path::{Path, PathBuf};
use std::process::Command;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const LICENSE: &str = env!("CARGO_PKG_LICENSE");

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A file's text, or `None` when the file does not exist.
fn read_if_present(path: &Path) -> Option<String> {
    path.is_file().then(|| read(path))
}

/// The text between the first pair of double quotes in `line`.
fn quoted(line: &str) -> Option<&str> {
    let (_, rest) = line.split_once('"')?;
    rest.split_once('"').map(|(value, _)| value)
}

/// The quoted value of the first `key = "value"` line (TOML, Python) at any indentation,
/// within the `[table]` when one is given.
fn assignment(text: &str, table: Option<&str>, key: &str) -> Option<String> {
    let mut in_table = table.is_none();
    for line in text.lines().map(str::trim) {
        if table.is_some() && line.starts_with('[') {
            in_table = Some(line) == table;
        } else if in_table && line.split('=').next().map(str::trim) == Some(key) {
            return quoted(line).map(str::to_owned);
        }
    }
    None
}

/// The string value of the first `"key": "value"` in a JSON text.
fn json_string(text: &str, key: &str) -> Option<String> {
    let (_, after_key) = text.split_once(&format!("\"{key}\""))?;
    let value = after_key.trim_start().strip_prefix(':')?;
    quoted(value).map(str::to_owned)
}

/// The expression after `SPDX-License-Identifier:`.
fn spdx_identifier(text: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.split_once("SPDX-License-Identifier:"))
        .map(|(_, id)| id.trim().to_owned())
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

/// A `Field:` (e.g. `Version:`) or a `variable=` line of a pkg-config file.
fn pc_entry(text: &str, prefix: &str) -> Option<String> {
    text.lines()
        .find_map(|line| line.strip_prefix(prefix))
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

/// `__version__` in the Python package.
fn python_dunder_version() -> Option<String> {
    let init = read(&root().join("python/dps_mqtt/__init__.py"));
    assignment(&init, None, "__version__")
}

/// The version pip gives the Python package: `[project] version`, or, when that is dynamic,
/// what `[tool.setuptools.dynamic]` names, which must be `dps_mqtt.__version__`.
fn python_package_version() -> Option<String> {
    let pyproject = read(&root().join("python/pyproject.toml"));
    if let Some(version) = assignment(&pyproject, Some("[project]"), "version") {
        return Some(version);
    }
    match assignment(&pyproject, Some("[tool.setuptools.dynamic]"), "version")?.as_str() {
        "dps_mqtt.__version__" => python_dunder_version(),
        other => Some(format!("whatever {other} holds")),
    }
}

/// The shared library's SONAME for this version: `libdps_mqtt.so.0.<minor>` while the major
/// version is 0 (a 0.y release may break the ABI), then `libdps_mqtt.so.<major>`.
fn expected_soname() -> String {
    match env!("CARGO_PKG_VERSION_MAJOR") {
        "0" => format!("libdps_mqtt.so.0.{}", env!("CARGO_PKG_VERSION_MINOR")),
        major => format!("libdps_mqtt.so.{major}"),
    }
}

/// Configures the CMake project (the library and its install rules; no examples, tests or
/// emulator) in a scratch directory and returns it: the pkg-config files and the package
/// version file are written at configure time, so they are checked as CMake makes them.
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
            "-DDPS_MQTT_INSTALL=ON",
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

/// Where a value is stated, what it says there (`None`: nothing readable), and what it must be.
struct Claim {
    source: String,
    found: Option<String>,
    want: String,
}

impl Claim {
    fn new(source: impl Into<String>, found: Option<String>, want: &str) -> Claim {
        Claim {
            source: source.into(),
            found,
            want: want.to_owned(),
        }
    }
}

/// Fails naming every claim that differs from what it must be.
fn assert_all_agree(what: &str, claims: &[Claim]) {
    let disagreeing: Vec<String> = claims
        .iter()
        .filter(|c| c.found.as_deref() != Some(c.want.as_str()))
        .map(|c| match &c.found {
            Some(found) => format!("  {} says {found}, not {}", c.source, c.want),
            None => format!(
                "  {} has no {what} this test can read (want {})",
                c.source, c.want
            ),
        })
        .collect();
    assert!(
        disagreeing.is_empty(),
        "the {what} differs from Cargo.toml's:\n{}",
        disagreeing.join("\n")
    );
}

#[test]
fn every_version_agrees_with_cargo_toml() {
    let build = configure_cmake();
    let generated = |name: &str| (build.join(name).display().to_string(), build.join(name));
    let (pc_name, pc_path) = generated("dps_mqtt.pc");
    let pc = read(&pc_path);
    let (static_pc_name, static_pc_path) = generated("dps_mqtt-static.pc");
    let (cmake_version_name, cmake_version_path) = generated("dps_mqttConfigVersion.cmake");

    let mut claims = vec![
        Claim::new(
            "include/dps_mqtt.h (DPS_VERSION_MAJOR/MINOR/PATCH)",
            Some(header_version(&read(&root().join("include/dps_mqtt.h")))),
            VERSION,
        ),
        Claim::new(
            "dps_version() of the library",
            Some(library_version()),
            VERSION,
        ),
        Claim::new(
            format!("{pc_name} (Version, from CMakeLists.txt's project VERSION)"),
            pc_entry(&pc, "Version:"),
            VERSION,
        ),
        Claim::new(
            format!("{cmake_version_name} (CMake package version, from project VERSION)"),
            cmake_package_version(&read(&cmake_version_path)),
            VERSION,
        ),
        Claim::new(
            "python/pyproject.toml (the package's version)",
            python_package_version(),
            VERSION,
        ),
        Claim::new(
            "python/dps_mqtt/__init__.py (__version__)",
            python_dunder_version(),
            VERSION,
        ),
        Claim::new(
            "CHANGELOG.md (latest released version)",
            changelog_version(&read(&root().join("CHANGELOG.md"))),
            VERSION,
        ),
    ];
    // What the CMake build and the packaging files state besides, where they exist: the static
    // library's pkg-config file and the SONAME it records, a recipe's literal version (one that
    // reads Cargo.toml states none), the vcpkg port shown in the docs.
    if let Some(text) = read_if_present(&static_pc_path) {
        claims.push(Claim::new(
            format!("{static_pc_name} (Version)"),
            pc_entry(&text, "Version:"),
            VERSION,
        ));
    }
    if let Some(soname) = pc_entry(&pc, "soname=") {
        claims.push(Claim::new(
            format!("{pc_name} (soname, from CMakeLists.txt's project VERSION)"),
            Some(soname),
            &expected_soname(),
        ));
    }
    if let Some(found) = read_if_present(&root().join("conanfile.py"))
        .and_then(|text| assignment(&text, None, "version"))
    {
        claims.push(Claim::new("conanfile.py (version)", Some(found), VERSION));
    }
    if let Some(text) = read_if_present(&root().join("docs/vcpkg.md")) {
        claims.push(Claim::new(
            "docs/vcpkg.md (the port's \"version-semver\")",
            json_string(&text, "version-semver"),
            VERSION,
        ));
    }
    assert_all_agree("version", &claims);
}

#[test]
fn every_license_declaration_agrees_with_cargo_toml() {
    let mut claims = vec![
        Claim::new(
            "LICENSE (SPDX-License-Identifier)",
            spdx_identifier(&read(&root().join("LICENSE"))),
            LICENSE,
        ),
        Claim::new(
            "emulator/Cargo.toml (license)",
            assignment(
                &read(&root().join("emulator/Cargo.toml")),
                Some("[package]"),
                "license",
            ),
            LICENSE,
        ),
        Claim::new(
            "python/pyproject.toml ([project] license)",
            assignment(
                &read(&root().join("python/pyproject.toml")),
                Some("[project]"),
                "license",
            ),
            LICENSE,
        ),
    ];
    if let Some(text) = read_if_present(&root().join("conanfile.py")) {
        claims.push(Claim::new(
            "conanfile.py (license)",
            assignment(&text, None, "license"),
            LICENSE,
        ));
    }
    if let Some(text) = read_if_present(&root().join("docs/vcpkg.md")) {
        claims.push(Claim::new(
            "docs/vcpkg.md (the port's \"license\")",
            json_string(&text, "license"),
            LICENSE,
        ));
    }
    for name in ["LICENSE-MIT", "LICENSE-APACHE"] {
        assert!(
            root().join(name).is_file(),
            "{name} is missing; LICENSE names it"
        );
    }
    assert_all_agree("license", &claims);
}
