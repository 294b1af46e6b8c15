# What the consumer tests expect of the found package (set by install_test.cmake): the Rust
# target and cargo features the installed package records.
if(DEFINED EXPECT_RUST_TARGET AND NOT dps_mqtt_RUST_TARGET STREQUAL EXPECT_RUST_TARGET)
    message(FATAL_ERROR "dps_mqtt_RUST_TARGET is '${dps_mqtt_RUST_TARGET}', expected '${EXPECT_RUST_TARGET}'")
endif()
# EXPECT_FEATURES is comma-separated.
string(REPLACE ";" "," dps_features "${dps_mqtt_FEATURES}")
if(DEFINED EXPECT_FEATURES AND NOT dps_features STREQUAL EXPECT_FEATURES)
    message(FATAL_ERROR "dps_mqtt_FEATURES is '${dps_mqtt_FEATURES}', expected '${EXPECT_FEATURES}'")
endif()
# The static library brings the removal of unused sections to the consumer's link.
get_target_property(dps_link_options dps_mqtt::dps_mqtt_static INTERFACE_LINK_OPTIONS)
if(CMAKE_C_COMPILER_ID MATCHES "^(GNU|Clang)$" AND NOT APPLE AND NOT "-Wl,--gc-sections" IN_LIST dps_link_options)
    message(FATAL_ERROR "dps_mqtt::dps_mqtt_static's INTERFACE_LINK_OPTIONS are '${dps_link_options}', without -Wl,--gc-sections")
endif()
