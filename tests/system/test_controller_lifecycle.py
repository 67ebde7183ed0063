"""Start-up, connection files, command line, and the ways the controller stops."""

import os
import signal
import stat
import subprocess
import time

import zmq

from conftest import CLIENT_FILE_FIELDS, ENGINE_FILE_FIELDS, controller_binary, wait_until


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_connection_files_have_every_field_and_mode_0600(controller):
    client, engine = controller.client_info(), controller.engine_info()
    assert _mode(controller.client_file) == 0o600
    assert _mode(controller.engine_file) == 0o600

    assert CLIENT_FILE_FIELDS <= set(client), f"missing: {CLIENT_FILE_FIELDS - set(client)}"
    assert ENGINE_FILE_FIELDS <= set(engine), f"missing: {ENGINE_FILE_FIELDS - set(engine)}"
    assert "notification" not in engine
    assert "task_scheme" not in engine

    for name in ("registration", "control", "mux", "task", "iopub", "notification", "broadcast"):
        assert isinstance(client[name], int) and 0 < client[name] < 65536, (name, client[name])
    for name in ("registration", "control", "mux", "task", "iopub", "hb_ping", "hb_pong"):
        assert isinstance(engine[name], int) and 0 < engine[name] < 65536, (name, engine[name])
    assert isinstance(engine["broadcast"], list) and len(engine["broadcast"]) == 2
    assert all(isinstance(p, int) for p in engine["broadcast"])
    assert client["registration"] == engine["registration"]

    for info in (client, engine):
        assert info["interface"] == "tcp://127.0.0.1"
        assert isinstance(info["key"], str) and info["key"]
        assert info["curve_serverkey"] is None
        assert info["signature_scheme"] == "hmac-sha256"
        assert info["pack"] == "json" and info["unpack"] == "json"
        assert info["ssh"] == ""
        assert isinstance(info["location"], str) and info["location"]
    assert client["key"] == engine["key"]
    assert client["task_scheme"] == "leastload"

    # Every port is distinct, apart from the shared registration port.
    ports = [client[n] for n in ("registration", "control", "mux", "task", "iopub",
                                 "notification", "broadcast")]
    ports += [engine[n] for n in ("control", "mux", "task", "iopub", "hb_ping", "hb_pong")]
    ports += engine["broadcast"]
    assert len(ports) == len(set(ports)), ports


def test_version_prints_7_1_0():
    out = subprocess.run([str(controller_binary()), "--version"], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "7.1.0"


def test_help_all_exits_0():
    out = subprocess.run([str(controller_binary()), "--help-all"], capture_output=True,
                         text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert "--profile-dir" in out.stdout


def test_sigterm_exits_0_and_removes_files(controller):
    controller.assert_serving()
    client_file, engine_file = controller.client_file, controller.engine_file
    t0 = time.monotonic()
    os.kill(controller.pid, signal.SIGTERM)
    try:
        status = controller.popen.wait(3.0)
    except subprocess.TimeoutExpired:
        raise AssertionError("controller still running 3 s after SIGTERM")
    assert status == 0, f"exit status {status} after SIGTERM ({time.monotonic() - t0:.2f} s)"
    assert not client_file.exists()
    assert not engine_file.exists()


def test_reuse_keeps_files_and_restart_reuses_ports_and_key(start_controller):
    first = start_controller("--reuse")
    before_client, before_engine = first.client_info(), first.engine_info()
    assert first.stop() == 0
    assert first.client_file.exists(), "--reuse: client file removed at exit"
    assert first.engine_file.exists(), "--reuse: engine file removed at exit"

    second = start_controller("--reuse")
    assert second.client_info() == before_client
    assert second.engine_info() == before_engine
    assert _mode(second.client_file) == 0o600
    # The restarted controller really serves on the old ports with the old key.
    second.assert_serving("restart with --reuse")
    assert second.stop() == 0
    assert second.client_file.exists()


def test_hub_shutdown_request(controller, raw_peers):
    peer = raw_peers(controller)
    notif = peer.connect(zmq.SUB, "notification")
    query = peer.connect(zmq.DEALER, "registration")
    # Let the subscription reach the PUB (a round trip on another socket is not enough).
    controller.assert_serving()
    time.sleep(0.5)

    t0 = time.monotonic()
    sent = peer.send(query, "shutdown_request", {})
    reply = peer.recv(query, timeout=5.0)
    assert reply is not None, "no shutdown_reply"
    assert reply["msg_type"] == "shutdown_reply"
    assert reply["content"]["status"] == "ok"
    assert reply["parent_header"]["msg_id"] == sent["header"]["msg_id"]

    note = peer.recv_type(notif, "shutdown_notification", timeout=5.0)
    assert note is not None, "no shutdown_notification on the notification PUB"
    assert note["content"] == {"status": "ok"}
    assert note["parent_header"]["msg_id"] == sent["header"]["msg_id"]

    try:
        status = controller.popen.wait(3.0)
    except subprocess.TimeoutExpired:
        raise AssertionError("controller still running 3 s after a hub shutdown_request")
    assert status == 0
    elapsed = time.monotonic() - t0
    assert elapsed < 3.0
    assert not controller.client_file.exists()
    assert not controller.engine_file.exists()


def test_cluster_id_names_files(start_controller, tmp_path):
    ctl = start_controller(cluster_id="abc")
    assert ctl.client_file.name == "ipcontroller-abc-client.json"
    assert ctl.client_file.exists() and ctl.engine_file.exists()
    assert (ctl.security_dir / "ipcontroller-abc-engine.json").exists()
    assert not (ctl.security_dir / "ipcontroller-client.json").exists()
    ctl.assert_serving()


def test_ipp_cluster_id_env_names_files(start_controller):
    ctl = start_controller(env={"IPP_CLUSTER_ID": "envid"}, wait=False)
    ctl.cluster_id = "envid"
    ctl.wait_ready()
    assert (ctl.security_dir / "ipcontroller-envid-client.json").exists()


def test_ipp_profile_dir_env_is_honoured(start_controller, tmp_path):
    where = tmp_path / "from-env"
    ctl = start_controller(profile_dir=where, pass_profile_dir=False,
                           env={"IPP_PROFILE_DIR": str(where)})
    assert ctl.client_file.exists() and ctl.engine_file.exists()
    # Nothing went to the default profile.
    assert not (tmp_path / "home" / ".ipython" / "profile_default" / "security" /
                "ipcontroller-client.json").exists()
    ctl.assert_serving()


def test_sigint_also_exits_cleanly(controller):
    os.kill(controller.pid, signal.SIGINT)
    assert wait_until(lambda: not controller.alive, 3.0), "still running 3 s after SIGINT"
    assert controller.popen.returncode == 0
    assert not controller.client_file.exists()
