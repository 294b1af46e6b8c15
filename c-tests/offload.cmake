# The TLS offload example (OpenSSL in the transport hooks) against the emulator, under valgrind
# too; included by the normal test suite and by the build without TLS (c-tests/no-tls).
# Expects PYTHON3, VALGRIND, DPS_EMULATOR_BIN and DPS_MQTT_C_TESTS_DIR.
if(NOT TARGET dps_register_offload)
    add_test(NAME offload COMMAND ${CMAKE_COMMAND} -E echo "dps_register_offload was not built (OpenSSL missing)")
    set_tests_properties(offload PROPERTIES WILL_FAIL ON)
elseif(NOT PYTHON3)
    add_test(NAME offload COMMAND ${CMAKE_COMMAND} -E echo "python3 was not found")
    set_tests_properties(offload PROPERTIES WILL_FAIL ON)
else()
    add_test(NAME offload
        COMMAND ${PYTHON3} ${DPS_MQTT_C_TESTS_DIR}/offload_test.py
                --cli $<TARGET_FILE:dps_register_offload> --emulator ${DPS_EMULATOR_BIN})
    set_tests_properties(offload PROPERTIES TIMEOUT 300)
    if(VALGRIND AND NOT DPS_MQTT_SANITIZE)
        add_test(NAME offload_valgrind
            COMMAND ${PYTHON3} ${DPS_MQTT_C_TESTS_DIR}/offload_test.py
                    --cli $<TARGET_FILE:dps_register_offload> --emulator ${DPS_EMULATOR_BIN}
                    --valgrind ${VALGRIND} --suppressions ${DPS_MQTT_C_TESTS_DIR}/valgrind.supp)
        set_tests_properties(offload_valgrind PROPERTIES TIMEOUT 600)
    endif()
endif()
