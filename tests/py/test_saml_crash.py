"""AssumeRoleWithSAML's replay protection survives a crash: rolegate (sled store) killed with SIGKILL
under concurrent load, right after answers arrived, refuses every assertion that got credentials
once it is started again on the same data.

A replay record reaches the disk before its answer is sent (the group-committed flush of the sled
store); if an answer went out first, the records of the last answers before the kill would be lost
with the process's memory and their assertions accepted a second time.
"""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import e2e
from test_saml import SamlServer, assume_raw, attrs, refused

WRITERS = 16
ASSERTIONS = 96
# The kill is sent by the writer that receives this many answers with credentials, while the other
# writers' requests are still in flight.
KILL_AFTER = 48


@pytest.fixture
def crash_server(rolegate_binary, admin_token, tmp_path):
    srv = SamlServer(tmp_path, admin_token)
    yield srv
    srv.rg.stop()


def test_every_assertion_that_got_credentials_is_a_replay_after_a_sigkill(crash_server):
    srv = crash_server
    assertions = [srv.idp.response(attributes=attrs(session=f"crash-{i}")) for i in range(ASSERTIONS)]
    pid = srv.rg.proc.pid
    lock = threading.Lock()
    accepted: list[str] = []
    killed = threading.Event()

    def use(assertion: str) -> None:
        if killed.is_set():
            return
        try:
            r = assume_raw(srv, assertion)
        except OSError:
            return  # in flight when the process died: it may or may not have been recorded
        if r.status != 200:
            return
        assert b"SecretAccessKey" in r.body, r.text
        with lock:
            accepted.append(assertion)
            if len(accepted) == KILL_AFTER and not killed.is_set():
                os.kill(pid, signal.SIGKILL)
                killed.set()

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(use, assertions))
    if not killed.is_set():
        os.kill(pid, signal.SIGKILL)
    assert srv.rg.proc.wait(timeout=10) == -signal.SIGKILL
    assert len(accepted) >= KILL_AFTER, f"only {len(accepted)} answers with credentials before the kill"

    srv.rg = e2e.Rolegate(srv.work / "rolegate", config_path=srv.rg.config_path, port=srv.rg.port,
                          env={e2e.ADMIN_TOKEN_ENV: srv.admin_token})
    # Every use the first process answered with credentials was recorded before that answer left.
    for assertion in accepted:
        refused(srv, assertion, "InvalidIdentityToken", "replay: assertion")
    # The store is whole: a fresh assertion is accepted.
    assert assume_raw(srv, srv.idp.response(attributes=attrs(session="after-crash"))).status == 200
