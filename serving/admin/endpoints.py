"""Which versions a running model server serves: `GET /v1/models/NAME` on its REST port.

The standard library's HTTP client, with a bounded timeout per request, so `tfrelay models list
--endpoint` needs nothing beyond the serving install and never hangs on a dead replica.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from tfrelay.serving.admin.errors import AdminError

DEFAULT_TIMEOUT_SECONDS = 5.0
# A status answer is a few hundred bytes per version; more is not a model server's answer.
_MAX_ANSWER_BYTES = 1 << 20


@dataclass(frozen=True)
class EndpointStatus:
    """What one replica said about one model.

    Attributes:
      endpoint: "host:port" as given.
      states: {version: state} (AVAILABLE, LOADING, UNLOADING, END, ...); empty on error.
      error: why the replica could not be asked, else "".
    """

    endpoint: str
    states: dict[int, str] = field(default_factory=dict)
    error: str = ""

    @property
    def serving(self) -> list[int]:
        """The AVAILABLE versions, highest first."""
        return sorted((v for v, s in self.states.items() if s == "AVAILABLE"), reverse=True)


def parse_endpoint(endpoint: str) -> str:
    """Checks an `--endpoint` value.

    Args:
      endpoint: "host:port" (the server's --rest_api_port), optionally with "http://".

    Returns:
      The base URL, e.g. "http://127.0.0.1:8501".

    Raises:
      AdminError: not host:port.
    """
    url = endpoint if "://" in endpoint else f"http://{endpoint}"
    parsed = urllib.parse.urlsplit(url)
    try:
        port = parsed.port
    except ValueError:
        port = None
    if parsed.scheme not in ("http", "https") or not parsed.hostname or port is None:
        raise AdminError(
            f"--endpoint {endpoint!r} is not host:port; give a model server's REST address, "
            "e.g. --endpoint 10.0.0.5:8501 (its --rest_api_port)"
        )
    return f"{parsed.scheme}://{parsed.netloc}"


def parse_status(answer: object) -> dict[int, str]:
    """{version: state} from a `GET /v1/models/NAME` answer.

    Args:
      answer: the decoded JSON body.

    Returns:
      {version: state name}.

    Raises:
      ValueError: not TF Serving's GetModelStatus JSON.
    """
    if not isinstance(answer, dict) or not isinstance(answer.get("model_version_status"), list):
        raise ValueError("the answer has no model_version_status")
    states: dict[int, str] = {}
    for entry in answer["model_version_status"]:
        states[int(entry["version"])] = str(entry["state"])
    return states


def query(endpoint: str, model: str, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> EndpointStatus:
    """Asks one replica which versions of `model` it has and in which state.

    Args:
      endpoint: "host:port" of the REST API.
      model: the model name the server serves it under.
      timeout: seconds for the connection and for the answer.

    Returns:
      The status; a replica that cannot be asked gives a status with `error` set (one
      unreachable replica must not hide what the others serve).

    Raises:
      AdminError: `endpoint` is not host:port.
    """
    base = parse_endpoint(endpoint)
    url = f"{base}/v1/models/{urllib.parse.quote(model, safe='')}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read(_MAX_ANSWER_BYTES + 1)
        return EndpointStatus(endpoint, parse_status(json.loads(body)))
    except urllib.error.HTTPError as err:
        try:
            message = json.loads(err.read(_MAX_ANSWER_BYTES)).get("error", "")
        except (ValueError, AttributeError):
            message = ""
        return EndpointStatus(endpoint, error=f"HTTP {err.code} {message}".strip())
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        return EndpointStatus(endpoint, error=f"unreachable ({reason})")
    except (ValueError, KeyError, TypeError) as err:
        return EndpointStatus(endpoint, error=f"not a model server's answer ({err})")


def unreachable_error(statuses: list[EndpointStatus], model: str) -> AdminError | None:
    """The one-line error for the replicas that could not be asked.

    Args:
      statuses: what each replica said.
      model: the model they were asked about.

    Returns:
      The error naming each failed replica and what to check, or None when all answered.
    """
    failed = [s for s in statuses if s.error]
    if not failed:
        return None
    named = "; ".join(f"{s.endpoint}: {s.error}" for s in failed)
    return AdminError(
        f"could not ask {len(failed)} of {len(statuses)} model servers about {model!r} ({named}). "
        "Check each --endpoint is a server's REST host:port (--rest_api_port), reachable from "
        "here, and serving a model of that name (--model)."
    )
