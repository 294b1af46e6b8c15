//! Gives the shared library (the cdylib) its SONAME on ELF systems, from the package version:
//! `libdps_mqtt.so.0.<minor>` while the major version is 0, since a 0.y release may break the
//! ABI (Cargo's semver), then `libdps_mqtt.so.<major>`. CMakeLists.txt derives the same name
//! for the links it installs.

use std::env;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let family = env::var("CARGO_CFG_TARGET_FAMILY").unwrap_or_default();
    let vendor = env::var("CARGO_CFG_TARGET_VENDOR").unwrap_or_default();
    if !family.split(',').any(|f| f == "unix") || vendor == "apple" {
        return;
    }
    let major = env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets CARGO_PKG_VERSION_MAJOR");
    let minor = env::var("CARGO_PKG_VERSION_MINOR").expect("cargo sets CARGO_PKG_VERSION_MINOR");
    let soversion = if major == "0" {
        format!("0.{minor}")
    } else {
        major
    };
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdps_mqtt.so.{soversion}");
}
