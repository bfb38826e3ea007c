"""A real mosquitto broker on free loopback ports, for tests, the demo and the sync benchmark.

Certificates (a CA, a server certificate for 127.0.0.1/localhost, a client certificate, and an unrelated CA to
test rejection) are generated with the ``openssl`` command in the test's temp directory.
"""

import getpass
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass
class Certs:
    """Paths of generated PEM files."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def make_certs(directory: Path) -> Certs:
    """Generate a CA, server and client certificates, and an unrelated CA."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN=test {name}",
                 "-keyout", f"{name}.key", "-out", f"{name}.pem", cwd=directory)
    (directory / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="ascii")
    for name, ext in (("server", ["-extfile", "server.ext"]), ("client", [])):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", cwd=directory)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-days", "2", "-out", f"{name}.pem", *ext, cwd=directory)
    return Certs(ca=directory / "ca.pem", server_cert=directory / "server.pem", server_key=directory / "server.key",
                 client_cert=directory / "client.pem", client_key=directory / "client.key",
                 other_ca=directory / "other-ca.pem")


@dataclass
class Broker:
    """mosquitto with an anonymous listener and, optionally, password+ACL and TLS listeners.

    ``persistent`` keeps sessions and queued messages across a restart, as a production broker does.
    ``users`` maps user names to passwords for the auth listener; ``acl`` is the text of an ACL file applied to
    it (``pattern`` lines may use %u / %c). ``tls`` adds a TLS listener (with the auth settings).
    """

    directory: Path
    users: dict[str, str] = field(default_factory=dict)
    acl: str | None = None
    tls: bool = False
    persistent: bool = False
    port: int = field(default_factory=free_port)
    auth_port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    certs: Certs | None = None
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The anonymous plain listener."""
        return f"mqtt://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        """The password (and ACL) listener."""
        return f"mqtt://127.0.0.1:{self.auth_port}"

    @property
    def tls_url(self) -> str:
        """The TLS listener (password and ACL too)."""
        return f"mqtts://127.0.0.1:{self.tls_port}"

    def _write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        # Run as the current user: as root, mosquitto would switch to user 'mosquitto', which cannot read the
        # test's private temp directory.
        persistence = (["persistence true", f"persistence_location {self.directory}/", "autosave_interval 1"]
                       if self.persistent else ["persistence false"])
        lines = [f"user {getpass.getuser()}", "per_listener_settings true", *persistence, "log_dest stderr",
                 "log_type error", "log_type warning", "log_type notice",
                 f"listener {self.port} 127.0.0.1", "allow_anonymous true"]
        auth: list[str] = []
        if self.users:
            passwords = self.directory / "passwords"
            passwords.write_text("", encoding="ascii")
            for user, password in self.users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwords), user, password], check=True,
                               capture_output=True)
            auth += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            auth += ["allow_anonymous true"]
        if self.acl is not None:
            acl_file = self.directory / "acl"
            acl_file.write_text(self.acl, encoding="ascii")
            auth.append(f"acl_file {acl_file}")
        lines += [f"listener {self.auth_port} 127.0.0.1", *auth]
        if self.tls:
            self.certs = self.certs or make_certs(self.directory / "certs")
            lines += [f"listener {self.tls_port} 127.0.0.1", *auth, f"cafile {self.certs.ca}",
                      f"certfile {self.certs.server_cert}", f"keyfile {self.certs.server_key}"]
        config = self.directory / "mosquitto.conf"
        config.write_text("\n".join(lines) + "\n", encoding="ascii")
        return config

    def start(self) -> None:
        """Start mosquitto and wait until every listener accepts connections."""
        config = self._write_config()
        log = (self.directory / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=log, stderr=log)
        log.close()
        ports = [self.port, self.auth_port] + ([self.tls_port] if self.tls else [])
        deadline = time.monotonic() + 10
        for port in ports:
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                        break
                except OSError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        log_path = self.directory / "mosquitto.log"
                        raise RuntimeError(f"mosquitto did not start: see {log_path}") from None
                    time.sleep(0.02)

    def stop(self) -> None:
        """Stop mosquitto (as a broker outage would); safe to call twice."""
        if self.process is None:
            return
        self.process.terminate()
        self.process.send_signal(signal.SIGCONT)  # a paused broker only acts on SIGTERM once resumed
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay up but nothing is read, forwarded or acknowledged."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Unfreeze the broker (SIGCONT)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def restart(self) -> None:
        """Start again on the same ports."""
        self.stop()
        self.start()
