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
