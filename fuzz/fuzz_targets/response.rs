#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dps_mqtt_fuzz::targets::response(data));
