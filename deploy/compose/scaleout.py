"""The scale-out phase of ``make compose-test``: ``--scale offload=2 --scale notify=2``.

On the running compose stack:

1. ``up -d --scale offload=2 --scale notify=2``: two containers of each, their
   instance names from the container host names (unstable across recreation);
2. a burst of emails while the receiver answers slowly, so notify holds work;
3. the notify container holding a lease is SIGKILLed and removed (a node gone),
   and an offload container too; the survivors take the work over through the
   dead replica's liveness key: every email arrives under one webhook-id each,
   the takeover time and the worst delay after the kill are measured;
4. ``up`` again with the same scale: replacements come up under new names, an
   email goes through, and only live replicas remain in the consumer group.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from deploy.compose.engine import COMPOSE_PROJECT_LABEL, Engine
from deploy.compose.receiver import Receiver

__all__ = ["ScaleOut", "ScaleResult"]

PREFIX = "render_signal:"  # the compose stack's REDIS_KEY_PREFIX default
EMAILS = 10
SLOW_RECEIVER_S = 3.0
TAKEOVER_BOUND_S = 15.0  # issue 17
DELAY_BOUND_S = 20.0  # issue 17


class ComposeCLI(Protocol):
    def run(self, *args: str, timeout: float, check: bool = True) -> str: ...


@dataclass
class ScaleResult:
    emails: int = 0
    killed_leases: int = 0
    takeover_s: float = 0.0
    worst_delay_s: float = 0.0
    resent_same_id: int = 0
    replaced_names: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"scaled to 2 offload + 2 notify: {self.emails} emails, a notify replica SIGKILLed"
            f" holding {self.killed_leases} lease(s), taken over in {self.takeover_s:.1f} s,"
            f" worst delay after the kill {self.worst_delay_s:.1f} s,"
            f" {self.resent_same_id} resent under the same webhook-id;"
            f" replacements under new names"
        )


class ScaleOut:
    """Runs the phase; raises ``AssertionError`` or ``TimeoutError`` when it fails."""

    def __init__(
        self,
        engine: Engine,
        compose: ComposeCLI,
        project: str,
        post: Callable[[str], float],
        receiver: Receiver,
        wait_healthy: Callable[[dict[str, int]], None],
        say: Callable[[str], None],
    ) -> None:
        self.engine = engine
        self.compose = compose
        self.project = project
        self.post = post  # marker -> time.monotonic() of the hand-over
        self.receiver = receiver
        self.wait_healthy = wait_healthy
        self.say = say
        self.result = ScaleResult()

    # ----------------------------------------------------------------- helpers ----
    def containers(self, service: str) -> dict[str, str]:
        """Running container id -> host name, for one compose service."""
        ids = self.engine.run(
            "ps", "-q",
            "--filter", f"label={COMPOSE_PROJECT_LABEL}={self.project}",
            "--filter", f"label=com.docker.compose.service={service}",
            timeout=60,
        ).stdout.split()  # fmt: skip
        if not ids:
            return {}
        inspected = json.loads(self.engine.run("inspect", *ids, timeout=60).stdout)
        return {c["Id"]: c["Config"]["Hostname"] for c in inspected}

    def redis(self, *command: str) -> list[str]:
        """``redis-cli --raw`` in the stack's Redis container; one list item per line."""
        (redis_id,) = self.containers("redis")
        out = self.engine.run("exec", redis_id, "redis-cli", "--raw", *command, timeout=60)
        return [line for line in out.stdout.splitlines() if line]

    def leases(self) -> dict[str, str]:
        """notify's leases: webhook-id -> holder (``notify-<host>-0``)."""
        flat = self.redis("HGETALL", f"{PREFIX}notify:leases")
        return dict(zip(flat[0::2], flat[1::2], strict=True))

    def consumers(self, stream: str, group: str) -> dict[str, int]:
        """Consumer name -> pending entries (XINFO CONSUMERS, raw: name, pending, idle...)."""
        rows = self.redis("XINFO", "CONSUMERS", f"{PREFIX}{stream}", group)
        out: dict[str, int] = {}
        for index, item in enumerate(rows):
            if item == "name":
                out[rows[index + 1]] = int(rows[rows.index("pending", index) + 1])
        return out

    def crash(self, container: str) -> None:
        """SIGKILL, then remove: the replica never comes back under that name."""
        self.engine.run("kill", "--signal", "KILL", container, timeout=60, check=False)
        self.engine.run("rm", "-f", container, timeout=120)

    def scale(self) -> None:
        self.compose.run(
            "up", "-d", "--no-build", "--scale", "offload=2", "--scale", "notify=2", timeout=600
        )
        self.wait_healthy({"offload": 2, "notify": 2})

    # --------------------------------------------------------------------- run ----
    def run(self) -> ScaleResult:
        self.scale()
        before = {s: set(self.containers(s).values()) for s in ("offload", "notify")}
        self.say(f"scaled: offload {sorted(before['offload'])}, notify {sorted(before['notify'])}")
        while not self.receiver.received.empty():
            self.receiver.received.get_nowait()  # earlier phases' requests
        self.receiver.delay_s = SLOW_RECEIVER_S
        tag = secrets.token_hex(3)
        markers = [f"CT-{tag}-{i}" for i in range(EMAILS)]
        posted = {marker: self.post(marker) for marker in markers}

        # The notify replica holding a lease dies with it (and one offload replica).
        deadline = time.monotonic() + 60
        leases: dict[str, str] = {}
        while not leases:
            if time.monotonic() > deadline:
                raise TimeoutError("no notify lease held within 60 s")
            leases = self.leases()
        holder = sorted(leases.values())[0]
        host = holder.removeprefix("notify-").rsplit("-", 1)[0]
        victim = next(cid for cid, name in self.containers("notify").items() if name == host)
        self.result.killed_leases = sum(1 for h in leases.values() if h == holder)
        killed_at = time.monotonic()
        self.crash(victim)
        self.crash(next(iter(self.containers("offload"))))
        self.say(f"SIGKILLed notify {host} holding {self.result.killed_leases} lease(s)")

        while True:  # until the dead replica holds nothing (leases, pending entries)
            held = sum(1 for h in self.leases().values() if h == holder)
            held += self.consumers("mail.offloaded", "notify").get(holder, 0)
            if not held:
                self.result.takeover_s = time.monotonic() - killed_at
                break
            if time.monotonic() - killed_at > 60:
                raise AssertionError(f"{holder} still holds {held} item(s) 60 s after the kill")

        first: dict[str, float] = {}
        ids: dict[str, set[str]] = {m: set() for m in markers}
        requests = 0
        while len(first) < len(markers):
            left = 90 - (time.monotonic() - killed_at)
            got = self.receiver.wait(timeout=max(left, 0.1))
            payload = json.loads(got.body)
            marker = next((m for m in markers if m in str(payload.get("subject", ""))), None)
            if marker is None:
                continue
            requests += 1
            ids[marker].add(got.headers["webhook-id"])
            first.setdefault(marker, got.at)
        self.receiver.delay_s = 0.0
        # Then until nothing is left anywhere, so a late resend is counted too.
        while self.redis("ZCARD", f"{PREFIX}notify:scheduled") != ["0"] or any(
            self.consumers("mail.offloaded", "notify").values()
        ):
            if time.monotonic() - killed_at > 120:
                raise AssertionError("notify jobs still scheduled 120 s after the kill")
        while not self.receiver.received.empty():
            got = self.receiver.received.get_nowait()
            marker = next((m for m in markers if m in got.body.decode(errors="replace")), None)
            if marker is not None:
                requests += 1
                ids[marker].add(got.headers["webhook-id"])
        split = {m: sorted(i) for m, i in ids.items() if len(i) > 1}
        if split:
            raise AssertionError(f"emails under two webhook-ids: {split}")
        delays = [first[m] - killed_at for m in markers if first[m] > killed_at]
        self.result.emails = len(markers)
        self.result.worst_delay_s = max(delays, default=0.0)
        self.result.resent_same_id = requests - len(markers)
        if self.result.takeover_s > TAKEOVER_BOUND_S:
            raise AssertionError(f"takeover took {self.result.takeover_s:.1f} s")
        if self.result.worst_delay_s >= DELAY_BOUND_S:
            raise AssertionError(
                f"an email arrived {self.result.worst_delay_s:.1f} s after the kill"
            )
        if min(posted.values()) > killed_at:
            raise AssertionError("the emails were posted after the kill")

        self.scale()  # replacements: new containers, new host names
        after = {s: set(self.containers(s).values()) for s in ("offload", "notify")}
        new = sorted((after["offload"] | after["notify"]) - (before["offload"] | before["notify"]))
        if len(new) != 2:
            raise AssertionError(f"expected two replacement replicas, got {new}")
        self.result.replaced_names = new
        marker = f"CT-{tag}-after"
        self.post(marker)
        while True:
            got = self.receiver.wait(timeout=60)
            if marker in str(json.loads(got.body).get("subject", "")):
                break
        members = self.consumers("mail.offloaded", "notify")
        expected = {f"notify-{name}-0" for name in after["notify"]}
        if set(members) != expected:
            raise AssertionError(f"notify group members {sorted(members)} != live {expected}")
        return self.result


def healthy_counts(states: dict[str, list[str]], wanted: dict[str, int]) -> bool:
    """Every service in ``wanted`` has that many containers, all healthy."""
    return all(
        len(states.get(name, [])) == count and all(s == "healthy" for s in states[name])
        for name, count in wanted.items()
    )
