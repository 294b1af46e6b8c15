"""MQTT over WebSocket (port 443 by default) and HTTP CONNECT proxies (a real tinyproxy)."""

import json
import subprocess
import sys
from typing import List, Tuple

import pytest
from conftest import HUB, ID_SCOPE, test_key

import dps_mqtt
from dps_mqtt import ProvisioningClient, ProxyOptions, Transport


def register(emulator, reg_id: str = "py-ok", key: str = "", **kwargs):
    with ProvisioningClient.create_from_symmetric_key(
            "localhost", reg_id, ID_SCOPE, key or test_key(reg_id),
            **emulator.kwargs(**kwargs)) as client:
        return client.register()


def test_websocket(emulator) -> None:
    result = register(emulator, websockets=True, port=emulator.ws_port)
    assert (result.assigned_hub, result.device_id) == (HUB, "py-ok")


def test_websocket_wrong_key(emulator) -> None:
    with pytest.raises(dps_mqtt.AuthenticationError) as e:
        register(emulator, key=test_key("wrong"), websockets=True, port=emulator.ws_port)
    assert e.value.name == "DPS_ERR_AUTH_UNAUTHORIZED"


class Stop(Exception):
    pass


class Recorder(Transport):
    """Records where the library dials, then stops the registration."""

    def __init__(self) -> None:
        self.dialled: List[Tuple[str, int]] = []

    def connect(self, host: str, port: int) -> None:
        self.dialled.append((host, port))
        raise Stop


@pytest.mark.parametrize("websockets,port", [(False, 8883), (True, 443)])
def test_default_ports(websockets, port) -> None:
    recorder = Recorder()
    with ProvisioningClient.create_from_symmetric_key(
            "dps.example", "py-ok", ID_SCOPE, test_key("py-ok"), websockets=websockets,
            transport=recorder) as client:
        with pytest.raises(Stop):
            client.register()
    assert recorder.dialled == [("dps.example", port)]


def test_a_proxy_is_dialled_instead_of_the_service() -> None:
    recorder = Recorder()
    with ProvisioningClient.create_from_symmetric_key(
            "dps.example", "py-ok", ID_SCOPE, test_key("py-ok"), transport=recorder,
            proxy_options=ProxyOptions("HTTP", "proxy.example", 3128)) as client:
        with pytest.raises(Stop):
            client.register()
    assert recorder.dialled == [("proxy.example", 3128)]


def test_only_http_proxies() -> None:
    with pytest.raises(dps_mqtt.InvalidArgumentError, match="only HTTP"):
        ProxyOptions("SOCKS5", "proxy.example", 1080)


def test_proxy_with_basic_auth(emulator, proxies) -> None:
    with_auth, _ = proxies
    options = ProxyOptions("HTTP", "127.0.0.1", with_auth.port, "dev", "s3cret")
    assert register(emulator, proxy_options=options).device_id == "py-ok"
    result = register(emulator, proxy_options=options, websockets=True, port=emulator.ws_port)
    assert result.device_id == "py-ok"


def test_websocket_through_a_proxy_without_auth(emulator, proxies) -> None:
    _, plain = proxies
    result = register(emulator, websockets=True, port=emulator.ws_port,
                      proxy_options=ProxyOptions("HTTP", "127.0.0.1", plain.port))
    assert result.assigned_hub == HUB


def test_proxy_wrong_password(emulator, proxies) -> None:
    with_auth, _ = proxies
    with pytest.raises(dps_mqtt.TransportError) as e:
        register(emulator, proxy_options=ProxyOptions("HTTP", "127.0.0.1", with_auth.port,
                                                      "dev", "wrong-pw"))
    assert e.value.name == "DPS_ERR_TRANSPORT_PROXY_AUTH"
    assert "wrong-pw" not in str(e.value)


def cli(emulator, *args: str, port: int):
    p = subprocess.run(
        [sys.executable, "-m", "dps_mqtt", "register", "--host", "localhost", "--port",
         str(port), "--ca-file", emulator.ca_file, "--timeout", "20", "--id-scope", ID_SCOPE,
         "--registration-id", "py-ok", "--symmetric-key", test_key("py-ok"), *args],
        capture_output=True, text=True, timeout=80)
    return p.returncode, json.loads(p.stdout)


def test_cli_websocket_and_proxy(emulator, proxies) -> None:
    with_auth, _ = proxies
    assert cli(emulator, "--websocket", port=emulator.ws_port)[0] == 0
    rc, doc = cli(emulator, "--proxy", f"127.0.0.1:{with_auth.port}", "--proxy-user",
                  "dev:s3cret", port=emulator.port)
    assert (rc, doc["deviceId"]) == (0, "py-ok")
    rc, doc = cli(emulator, "--proxy", f"127.0.0.1:{with_auth.port}", "--proxy-user",
                  "dev:wrong-pw", port=emulator.port)
    assert (rc, doc["error"]) == (5, "DPS_ERR_TRANSPORT_PROXY_AUTH")


@pytest.mark.parametrize("args", [
    ("--proxy", "proxy"), ("--proxy", "proxy:0"), ("--proxy", ":3128"),
    ("--proxy-user", "u:p"), ("--proxy", "proxy:3128", "--proxy-user", ":p"),
])
def test_cli_proxy_usage_errors(emulator, args) -> None:
    rc, doc = cli(emulator, *args, port=emulator.port)
    assert (rc, doc["error"]) == (2, "DPS_ERR_INVALID_ARGUMENT")
