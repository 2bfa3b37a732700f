"""``iot_gateway.paho_fast`` leans on paho-mqtt's private internals: an unsupported paho release
is refused when the module is imported, and every private name it uses exists in the installed
paho with the shape it expects. An upgrade of paho fails here, not quietly in the gateway.
(The shortcuts' behaviour on a live broker is tested in test_gateway_mqtt.py.)"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import textwrap
from collections import deque
from pathlib import Path

import paho.mqtt
import paho.mqtt.client as mqtt
import pytest

from gridcoin.library_versions import UnsupportedLibraryVersion
from iot_gateway import paho_fast

ROOT = Path(__file__).resolve().parents[2]


def test_an_unsupported_paho_release_is_refused_when_the_module_is_imported(monkeypatch):
    monkeypatch.setattr(paho.mqtt, "__version__", "3.0.0")
    monkeypatch.delitem(sys.modules, "iot_gateway.paho_fast")
    with pytest.raises(UnsupportedLibraryVersion) as refused:
        importlib.import_module("iot_gateway.paho_fast")
    message = str(refused.value)
    assert "paho-mqtt 3.0.0 is installed" in message and "written for paho-mqtt 2.1.x" in message
    assert "_handle_publish" in message and "tests/iot_gateway/test_gateway_paho_fast.py" in message


def test_patch_releases_of_a_supported_series_pass(monkeypatch):
    for version in ("2.1.0", "2.1.7"):
        monkeypatch.setattr(paho.mqtt, "__version__", version)
        paho_fast.check_paho_version()
    monkeypatch.setattr(paho.mqtt, "__version__", "2.2.0")
    with pytest.raises(UnsupportedLibraryVersion, match="paho-mqtt 2.2.0 is installed"):
        paho_fast.check_paho_version()


def test_the_installed_paho_is_supported():
    paho_fast.check_paho_version()


def parameters(function) -> tuple[str, ...]:
    return tuple(inspect.signature(function).parameters)


@pytest.mark.parametrize("name", sorted(paho_fast.PAHO_PRIVATE_METHODS))
def test_each_private_client_method_exists_with_the_expected_parameters(name):
    assert parameters(getattr(mqtt.Client, name)) == paho_fast.PAHO_PRIVATE_METHODS[name]


def test_the_private_message_info_methods_and_module_names_exist():
    for name, expected in paho_fast.PAHO_PRIVATE_MESSAGE_INFO_METHODS.items():
        assert parameters(getattr(mqtt.MQTTMessageInfo, name)) == expected
    for name in paho_fast.PAHO_MODULE_NAMES:
        assert hasattr(mqtt, name), name
    assert isinstance(mqtt.sockpair_data, bytes)


def test_a_paho_client_has_the_private_attributes_with_the_expected_shapes():
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, manual_ack=True)
    missing = [name for name in paho_fast.PAHO_PRIVATE_ATTRIBUTES if not hasattr(client, name)]
    assert missing == []
    assert set(paho_fast.PAHO_IN_PACKET_KEYS) <= set(client._in_packet)
    assert isinstance(client._in_packet["packet"], bytearray | bytes)
    # the write queue's records, as paho's own _packet_queue builds them (the module appends its own)
    source = ast.parse(textwrap.dedent(inspect.getsource(mqtt.Client._packet_queue)))
    [record] = [node for node in ast.walk(source) if isinstance(node, ast.Dict)]
    assert [key.value for key in record.keys] == list(paho_fast.PAHO_OUT_PACKET_KEYS)  # type: ignore[union-attr]
    assert isinstance(client._out_packet, deque) and isinstance(client._out_messages, dict)
    assert isinstance(client._inflight_messages, int) and isinstance(client._max_inflight_messages, int)
    for mutex in (client._in_callback_mutex, client._out_message_mutex):
        assert hasattr(mutex, "__enter__") and hasattr(mutex, "__exit__")


def test_the_buffered_client_overrides_no_private_paho_method_it_does_not_declare():
    overridden = {name for name in vars(paho_fast.BufferedClient)
                  if name.startswith("_") and not name.startswith("__") and hasattr(mqtt.Client, name)}
    assert overridden <= set(paho_fast.PAHO_PRIVATE_METHODS)


def test_the_buffered_clients_own_attributes_cannot_collide_with_paho():
    client = paho_fast.BufferedClient(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    plain = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    own = set(vars(client)) - set(vars(plain))
    assert own and all(name.startswith("_fast_") for name in own), own
    assert not any(hasattr(plain, name) or hasattr(mqtt.Client, name) for name in own)


def private_names_used_by_the_buffered_client() -> set[str]:
    """Every ``<something>._name`` the BufferedClient's code touches, except its own ``_fast_``
    attributes and dunders."""
    tree = ast.parse(Path(paho_fast.__file__).read_text())
    [cls] = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "BufferedClient"]
    return {node.attr for node in ast.walk(cls) if isinstance(node, ast.Attribute)
            and node.attr.startswith("_") and not node.attr.startswith(("_fast_", "__"))}


def test_every_private_paho_name_the_module_uses_is_declared_and_checked():
    declared = (set(paho_fast.PAHO_PRIVATE_METHODS) | set(paho_fast.PAHO_PRIVATE_ATTRIBUTES)
                | set(paho_fast.PAHO_PRIVATE_MESSAGE_INFO_METHODS))
    assert private_names_used_by_the_buffered_client() <= declared


def test_no_other_module_uses_the_private_paho_names():
    names = (set(paho_fast.PAHO_PRIVATE_METHODS) | set(paho_fast.PAHO_PRIVATE_MESSAGE_INFO_METHODS)
             | {"_in_packet", "_out_messages", "_out_packet", "_sockpairW", "_inflight_messages", "_sock_close",
                "_manual_ack", "_in_callback_mutex", "_out_message_mutex"})
    offenders = []
    for app in ("iot_gateway", "meters", "frontend", "gridcoin", "bench", "demo"):
        for path in (ROOT / app).rglob("*.py"):
            if path == Path(paho_fast.__file__):
                continue
            used = {node.attr for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Attribute)}
            offenders += [f"{path.relative_to(ROOT)}: {name}" for name in sorted(used & names)]
    assert offenders == []
