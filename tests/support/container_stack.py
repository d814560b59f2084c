"""Start compose.yaml's stack with podman-compose and play one SMS journey against it.

Run by deploy/container-check once the images are built: `python -m tests.support.container_stack
--compose PATH-TO-podman-compose`. The local Twilio server runs here, on the host; the line's
containers reach it across podman's bridge, and it posts status callbacks to the published web
port, signed as Twilio signs them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from tests.support import lines
from tests.support.deploy import play_chat
from tests.support.fake_twilio import FakeTwilio, sign
from tests.support.line import FAST_RATES
from tests.support.servers import free_port

LINE_NUMBER = "+15550100000"
PROJECT = "peerline-check"


def say(message: str) -> None:
    """Print a step with the time, at once."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class Stack:
    """The compose project, driven through podman-compose."""

    def __init__(self, compose: str, env_file: Path, repo: Path) -> None:
        self.base = [
            compose, "--in-pod", "false", "-p", PROJECT, "--env-file", str(env_file),
            "-f", str(repo / "compose.yaml"),
        ]  # fmt: skip
        self.repo = repo

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run podman-compose with these arguments, echoing a short account of it."""
        say("podman-compose " + " ".join(args))
        result = subprocess.run(
            [*self.base, *args], cwd=self.repo, capture_output=True, text=True, timeout=600
        )
        if check and result.returncode != 0:
            print(result.stdout[-4000:], result.stderr[-4000:], sep="\n", flush=True)
            raise SystemExit(f"podman-compose {' '.join(args)} failed ({result.returncode})")
        return result

    def container(self, service: str) -> str:
        """Return the name of a service's running container."""
        names = subprocess.run(
            [
                "podman", "ps", "--format", "{{.Names}}",
                "--filter", f"label=com.docker.compose.project={PROJECT}",
                "--filter", f"label=com.docker.compose.service={service}",
            ],  # fmt: skip
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        if not names:
            raise SystemExit(f"no running container for {service}")
        return names[0]

    def health(self, service: str) -> str:
        """Return podman's health status of a service's container."""
        out = subprocess.run(
            ["podman", "inspect", "--format", "{{.State.Health.Status}}", self.container(service)],
            capture_output=True, text=True,
        )  # fmt: skip
        return out.stdout.strip()

    def wait_healthy(self, service: str, timeout: float = 120) -> None:
        """Run the image's health check until it passes."""
        deadline = time.monotonic() + timeout
        name = self.container(service)
        while subprocess.run(["podman", "healthcheck", "run", name]).returncode != 0:
            if time.monotonic() > deadline:
                self.logs(service)
                raise SystemExit(f"{service} never became healthy")
            time.sleep(2)
        say(f"{service} is healthy ({self.health(service)})")

    def logs(self, service: str, *, quiet: bool = False) -> str:
        """Print (unless quiet) and return the tail of a service's log."""
        text = subprocess.run(
            ["podman", "logs", "--tail", "60", self.container(service)],
            capture_output=True, text=True,
        )  # fmt: skip
        out = text.stdout + text.stderr
        if not quiet:
            print(f"--- {service} log ---\n{out}", flush=True)
        return out


def http(url: str, token: str | None = None, data: bytes | None = None) -> tuple[int, str]:
    """GET (or POST) a URL and return its status and body, 4xx and 5xx included."""
    request = urllib.request.Request(url, data=data)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class Phone:
    """Texts in (signed webhooks over HTTP) and texts out (the local Twilio's record)."""

    def __init__(self, base_url: str, twilio: FakeTwilio) -> None:
        self.base_url = base_url
        self.twilio = twilio

    def sms(self, sender: str, body: str) -> None:
        """Post an inbound SMS as Twilio would, and insist on a 200."""
        url = f"{self.base_url}/webhooks/sms"
        params = {
            "MessageSid": "SM" + uuid.uuid4().hex,
            "AccountSid": self.twilio.account_sid,
            "From": sender,
            "To": LINE_NUMBER,
            "Body": body,
            "NumMedia": "0",
        }
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(params).encode(),
            headers={"X-Twilio-Signature": sign(url, params, self.twilio.auth_token)},
        )
        with urllib.request.urlopen(request, timeout=20) as response:
            assert response.status == 200, response.status
        say(f"  in : {'Sam' if sender == lines.SAM else 'texter'} -> {body!r}")

    def expect(self, number: str, pattern: str, timeout: float = 60) -> str:
        """Wait for a text matching a pattern to reach a number, and return it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in self.twilio.messages_to(number):
                if re.search(pattern, message["body"] or ""):
                    who = "Sam" if number == lines.SAM else "texter"
                    say(f"  out: -> {who}: {message['body'][:70]!r}")
                    return str(message["body"])
            time.sleep(0.1)
        raise AssertionError(f"no text to {number} matching {pattern!r} in {timeout} s")


def main() -> None:
    """Start the stack, check it, play the journey, and take it down again."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--compose", default="podman-compose")
    parser.add_argument("--image", default="localhost/peerline:latest")
    parser.add_argument("--postgres-image", default="localhost/peerline-postgres-standin:latest")
    parser.add_argument("--redis-image", default="localhost/peerline-redis-standin:latest")
    parser.add_argument("--keep", action="store_true", help="leave the stack running")
    args = parser.parse_args()
    repo = Path(__file__).resolve().parents[2]
    web_port = free_port()
    twilio = FakeTwilio(host="0.0.0.0", port=free_port()).start()
    token = secrets.token_urlsafe(24)
    env = {
        "PEERLINE_IMAGE": args.image,
        "POSTGRES_IMAGE": args.postgres_image,
        "REDIS_IMAGE": args.redis_image,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "PEERLINE_ENCRYPTION_KEYS": secrets.token_urlsafe(48),
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{web_port}",
        "TWILIO_ACCOUNT_SID": twilio.account_sid,
        "TWILIO_AUTH_TOKEN": twilio.auth_token,
        "TWILIO_PHONE_NUMBER": LINE_NUMBER,
        # podman puts the host in every container's /etc/hosts under this name.
        "TWILIO_API_BASE_URL": f"http://host.containers.internal:{twilio.base_url.split(':')[-1]}",
        "PEERLINE_SEND_RATES": FAST_RATES,
        "PEERLINE_METRICS_TOKEN": token,
        "WEB_PORT": str(web_port),
    }
    workdir = Path(tempfile.mkdtemp(prefix="peerline-check-"))
    # The database and Redis passwords as compose secrets, made as an operator makes them.
    subprocess.run([str(repo / "deploy" / "make-secrets"), str(workdir / "secrets")], check=True)
    env["PEERLINE_SECRETS"] = str(workdir / "secrets")
    passwords = [
        (workdir / "secrets" / name).read_text().strip()
        for name in ("postgres_password", "redis_auth.conf")
    ]
    passwords[1] = passwords[1].removeprefix("requirepass ")
    env_file = workdir / "check.env"
    env["PEERLINE_ENV_FILE"] = str(env_file)
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    env_file.chmod(0o644)  # read by podman-compose only, on this machine
    stack = Stack(args.compose, env_file, repo)
    stack.run("down", "-v", check=False)
    started = time.monotonic()
    ok = False
    try:
        stack.run("up", "-d", "db", "redis")
        stack.wait_healthy("db")
        stack.wait_healthy("redis")
        release = stack.run("run", "--rm", "release")
        assert "Database is up to date." in release.stdout, release.stdout + release.stderr
        say("release: Database is up to date.")
        stack.run("up", "-d", "--no-deps", "web", "worker")
        base = env["PUBLIC_BASE_URL"]
        deadline = time.monotonic() + 90
        while http_or_none(base + "/readyz") != 200:
            if time.monotonic() > deadline:
                stack.logs("web")
                raise SystemExit("web never became ready")
            time.sleep(1)
        stack.wait_healthy("web")
        say(f"web ready {time.monotonic() - started:.1f} s after the first `up`; /healthz "
            f"{http(base + '/healthz')}; /readyz {http(base + '/readyz')}")
        line_file = workdir / "line.yaml"
        line_file.write_text(lines.ALWAYS_OPEN)
        imported = subprocess.run(
            ["podman", "exec", "-i", stack.container("web"), "sh", "-c",
             "cat > /tmp/line.yaml && peerline import /tmp/line.yaml"],
            input=line_file.read_text(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if imported.returncode:
            raise SystemExit(f"import failed:\n{imported.stdout}\n{imported.stderr}")
        say("imported the line file: " + imported.stdout.strip().replace("\n", "; "))
        phone = Phone(base, twilio)
        phone.expect(lines.SAM, "#take")  # the supporter's welcome, from the worker
        began = time.monotonic()
        play_chat(phone.sms, phone.expect)
        say(f"journey played in {time.monotonic() - began:.1f} s; "
            f"{len(twilio.messages)} texts sent through the local Twilio")
        twilio.drain()
        assert twilio.server_errors == [], twilio.server_errors
        assert {m["from"] for m in twilio.messages} == {LINE_NUMBER}
        texts = [(m["to"], m["body"]) for m in twilio.messages]
        assert len(texts) == len(set(texts)), "a text went out twice"
        codes = [c.get("status") for c in twilio.callbacks]
        say(f"status callbacks answered: {sorted(set(map(str, codes)))}")
        status, _ = http(base + "/metrics")
        assert status in (401, 403), f"/metrics without the token answered {status}"
        status, text = http(base + "/metrics", token=token)
        assert status == 200, status
        wanted = ("peerline_webhooks_total", "peerline_texts_waiting", "peerline_outbox_texts")
        shown = [line for line in text.splitlines() if line.startswith(wanted)]
        say("/metrics (with the token):\n    " + "\n    ".join(shown[:14]))
        assert any(line.startswith("peerline_webhooks_total") for line in shown)
        worker_metrics = subprocess.run(
            ["podman", "exec", stack.container("worker"), "python3", "-c",
             "import urllib.request; print(urllib.request.urlopen("
             "'http://127.0.0.1:9100/metrics', timeout=5).read().decode())"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        sent = [line for line in worker_metrics.stdout.splitlines()
                if line.startswith(("peerline_texts_sent", "peerline_time_to_first_offer_seconds_count"))]  # noqa: E501
        say("worker :9100/metrics:\n    " + "\n    ".join(sent))
        assert sent, worker_metrics.stdout[-2000:] + worker_metrics.stderr[-2000:]
        # The load balancer's view while Redis is away, and after it is back.
        subprocess.run(["podman", "stop", "-t", "5", stack.container("redis")], check=True,
                       capture_output=True)  # fmt: skip
        away = http(base + "/readyz")
        say(f"redis stopped: /readyz {away}; /healthz {http(base + '/healthz')[0]}")
        assert away[0] == 503 and '"redis":"ConnectionError"' in away[1].replace(" ", "")
        stack.run("start", "redis")
        deadline = time.monotonic() + 60
        while http(base + "/readyz")[0] != 200:
            assert time.monotonic() < deadline, "web never ready again after redis came back"
            time.sleep(1)
        say(f"redis started again: /readyz {http(base + '/readyz')[0]}")
        # pg_dump is in the image: `peerline backup` dumps the line's database.
        backup = subprocess.run(
            ["podman", "exec", stack.container("web"), "sh", "-c",
             "peerline backup -o /tmp/check.dump && pg_dump --version && wc -c < /tmp/check.dump"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert backup.returncode == 0, backup.stdout + backup.stderr
        say("peerline backup in the web container: " + backup.stdout.strip().replace("\n", "; "))
        # No password in what `podman inspect` shows of any container (environment, command).
        inspected = subprocess.run(
            ["podman", "inspect", *(stack.container(s) for s in ("web", "worker", "db", "redis"))],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert not [p for p in passwords if p in inspected], "a password shows in podman inspect"
        say("podman inspect of web, worker, db and redis: no password (compose secrets)")
        # A calendar feed's token stays out of the access log.
        feed_token = secrets.token_urlsafe(24)
        say(f"calendar feed with an unknown token: {http(f'{base}/calendar/{feed_token}.ics')[0]}")
        time.sleep(1)
        web_log = stack.logs("web", quiet=True)
        assert feed_token not in web_log and "/calendar/[token].ics" in web_log, web_log[-1500:]
        say("web access log: " + next(
            line.strip() for line in web_log.splitlines() if "/calendar/" in line
        ))  # fmt: skip
        image = subprocess.run(
            ["podman", "image", "inspect", "--format", "{{.Size}}", args.image],
            capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        healthcheck = subprocess.run(
            ["podman", "image", "inspect", "--format", "{{json .Config.Healthcheck}}", args.image],
            capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        user = subprocess.run(
            ["podman", "exec", stack.container("web"), "id"], capture_output=True, text=True
        ).stdout.strip()
        say(f"image {args.image}: {int(image) / 1e6:.0f} MB; web runs as {user}")
        say(f"image health check: {json.loads(healthcheck)['Test'] if healthcheck else None}")
        ok = True
    finally:
        if not ok:
            for service in ("web", "worker"):
                try:
                    stack.logs(service)
                except SystemExit:
                    pass
        if not args.keep:
            stack.run("down", "-v", check=False)
        twilio.stop()
    say("PASS: the compose stack took signed webhooks and sent every text of the journey")


def http_or_none(url: str) -> int | None:
    """Return a URL's status, or None while nothing answers."""
    try:
        return http(url)[0]
    except OSError:
        return None


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
