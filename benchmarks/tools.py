"""Set-up the harness does itself before measuring: the load generators (Debian's `wrk` and
`h2load`, through apt-get) and the peer servers' virtual environments (peers/setup.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess

from benchmarks.procs import BENCH

# Executable -> the Debian package that ships it.
LOAD_GENERATORS = {"wrk": "wrk", "h2load": "nghttp2-client"}


def ensure_load_generators(names: list[str]) -> None:
    """Installs the missing load generators with apt-get (as root, or through sudo)."""
    missing = [LOAD_GENERATORS[name] for name in names if shutil.which(name) is None]
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if sudo and shutil.which("sudo") is None:
        raise RuntimeError(f"install {' '.join(missing)} (apt-get) and re-run")
    print(f"setup: installing {' '.join(missing)} with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run([*sudo, "apt-get", "install", "-y", "-qq", *missing], check=True, env=env)
    still = [name for name in names if shutil.which(name) is None]
    if still:
        raise RuntimeError(f"apt-get did not provide {', '.join(still)}")


def ensure_peers(peers: list[str]) -> None:
    """Builds the peers' venvs under benchmarks/.venvs/ when missing or out of date."""
    if peers:
        subprocess.run(["bash", str(BENCH / "peers" / "setup.sh"), *peers], check=True)


def peer_versions(peer: str) -> dict[str, str]:
    """The frozen versions of a peer's main packages, from its constraints file."""
    wanted = {"kserve", "fastapi", "uvicorn", "bentoml", "tensorflow", "protobuf", "starlette"}
    versions = {}
    path = BENCH / "peers" / f"constraints-{peer}.txt"
    for line in path.read_text().splitlines() if path.exists() else []:
        name, _, version = line.partition("==")
        if name.lower() in wanted and version:
            versions[name.lower()] = version
    return versions


def tool_version(argv: list[str]) -> str:
    """The first line a tool prints about its version."""
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    lines = (result.stdout + result.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"
