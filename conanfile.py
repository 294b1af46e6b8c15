"""Conan 2 recipe for dps-mqtt: cargo builds the Rust library through the project's own CMake.

    conan create .                              # static library, TLS (rustls) built in
    conan create . -o "dps-mqtt/*:tls=False"    # TLS offload only (no rustls)
    conan create . -o "dps-mqtt/*:shared=True"  # the shared library

Needs cargo (Rust stable, 1.81 or later) and CMake (3.16 or later) on PATH; nothing from a Conan
remote. Consumers get the CMake target dps_mqtt::dps_mqtt (find_package(dps_mqtt) with
CMakeDeps), the pkg-config name dps_mqtt (PkgConfigDeps), dps_mqtt.h and the C++17 wrapper
dps_mqtt.hpp.

Build-time speed knob: DPS_MQTT_CARGO_TARGET_DIR in the environment names the cargo target
directory to build in (e.g. a CMake build's, or a CI cache). cargo then compiles only what that
directory does not already hold, instead of the Rust dependencies from scratch in the Conan
build folder. It does not change the package's contents.

Cross-compiling: give the Rust target triple with -o "dps-mqtt/*:rust_target=<triple>" (e.g.
aarch64-unknown-linux-gnu) and a host profile whose C compiler targets the same machine; the
project's CMake passes that compiler to cargo (docs/cross-compiling.md).
"""

import os

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import cross_building
from conan.tools.cmake import CMake, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load, rm

required_conan_version = ">=2.0"


class DpsMqttConan(ConanFile):
    name = "dps-mqtt"
    description = "Azure IoT Device Provisioning Service client over MQTT, with a C ABI for device firmware"
    license = "MIT OR Apache-2.0"
    topics = ("azure-iot", "dps", "mqtt", "provisioning", "firmware")
    package_type = "library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "shared": [True, False],
        "tls": [True, False],
        "rust_target": [None, "ANY"],
    }
    default_options = {
        "shared": False,
        "tls": True,
        "rust_target": None,
    }
    # What cargo and CMake read to build the library: the workspace (the emulator is a member,
    # so its manifest and sources come along; it is not built).
    exports_sources = (
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        ".cargo/*",
        "CMakeLists.txt",
        "cbindgen.toml",
        "LICENSE*",
        "cmake/*",
        "include/*",
        "src/*",
        # Cargo.toml declares the bench (harness = false), and cargo refuses a manifest whose
        # declared target has no file.
        "benches/*",
        "emulator/Cargo.toml",
        "emulator/src/*",
    )

    def set_version(self):
        # One version: Cargo.toml's.
        for line in load(self, os.path.join(self.recipe_folder, "Cargo.toml")).splitlines():
            if line.startswith("version = "):
                self.version = line.split('"')[1]
                return
        raise ConanInvalidConfiguration("no version in Cargo.toml")

    def configure(self):
        # A C library: the C++ wrapper is header-only, so no C++ runtime is linked in.
        self.settings.rm_safe("compiler.libcxx")
        self.settings.rm_safe("compiler.cppstd")

    def validate(self):
        if cross_building(self) and not self.options.rust_target:
            raise ConanInvalidConfiguration(
                "cross-compiling: give the Rust target triple, -o \"dps-mqtt/*:rust_target=<triple>\"")
        if self.options.shared and self.options.rust_target and "-none" in str(self.options.rust_target):
            raise ConanInvalidConfiguration("a bare-metal target has no shared library")

    def layout(self):
        cmake_layout(self)

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["DPS_MQTT_TLS"] = bool(self.options.tls)
        tc.cache_variables["DPS_MQTT_BUILD_EXAMPLES"] = False
        tc.cache_variables["DPS_MQTT_BUILD_TESTS"] = False
        tc.cache_variables["DPS_MQTT_BUILD_EMULATOR"] = False
        tc.cache_variables["DPS_MQTT_INSTALL"] = True
        if self.options.rust_target:
            tc.cache_variables["DPS_MQTT_RUST_TARGET"] = str(self.options.rust_target)
        target_dir = os.environ.get("DPS_MQTT_CARGO_TARGET_DIR")
        tc.cache_variables["DPS_MQTT_CARGO_TARGET_DIR"] = (
            target_dir if target_dir else os.path.join(self.build_folder, "cargo-target"))
        tc.generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        cmake = CMake(self)
        cmake.install()
        include = os.path.join(self.package_folder, "include")
        # The C++ wrapper, whether or not the project's install rules know it.
        copy(self, "dps_mqtt.hpp", os.path.join(self.source_folder, "include"), include)
        copy(self, "LICENSE*", self.source_folder, os.path.join(self.package_folder, "licenses"))
        lib = os.path.join(self.package_folder, "lib")
        shared_patterns = ("*.so", "*.so.*", "*.dylib")
        if self.options.shared:
            has_shared = os.path.isdir(lib) and any(
                ".so." in f or f.endswith((".so", ".dylib")) for f in os.listdir(lib))
            if not has_shared:
                raise ConanInvalidConfiguration(
                    "shared=True, but the project's CMake installed no shared library")
        else:
            # The project installs the shared library next to the static one where it has
            # one; a static package must not hold it, or -ldps_mqtt would pick it. The
            # packaged CMake config finds the shared library only when it exists.
            for pattern in shared_patterns:
                rm(self, pattern, lib)

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "dps_mqtt")
        self.cpp_info.set_property("cmake_target_name", "dps_mqtt::dps_mqtt")
        self.cpp_info.set_property("pkg_config_name", "dps_mqtt")
        self.cpp_info.libs = ["dps_mqtt"]
        # A static Rust library needs these from the system (what the project's CMake package
        # and dps_mqtt.pc list); the shared library carries its own dependencies.
        bare_metal = self.options.rust_target and "-none" in str(self.options.rust_target)
        if not self.options.shared and not bare_metal:
            # libgcc_s is left out: the C compiler's driver links the unwinder itself, and
            # naming it breaks a fully static link.
            if self.settings.os == "Linux":
                self.cpp_info.system_libs = ["util", "rt", "pthread", "m", "dl"]
            else:
                self.cpp_info.system_libs = ["pthread", "m"]
        # The Rust code is compiled one section per function: let the linker drop the unused.
        if self.settings.os == "Macos":
            self.cpp_info.exelinkflags = ["-Wl,-dead_strip"]
        elif self.settings.os != "Windows":
            self.cpp_info.exelinkflags = ["-Wl,--gc-sections"]
