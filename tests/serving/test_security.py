"""TLS (and mutual TLS) on both front ends from TF Serving's SSLConfig, bearer-token auth,
request size limits and model-name checks. Certificates come from a CA the test makes."""

from __future__ import annotations

import ssl

import grpc
import httpx
import pytest

from support import grpc_clients as clients
from support.certs import CertificateAuthority, ssl_config_text
from support.servers import InProcessModelServer, wait_until
from tfrelay.serving.options import ServerOptions

TOKEN = "s3cr3t-token"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority(directory, "test-ca")
    other_ca = CertificateAuthority(directory, "untrusted-ca")
    return {
        "ca": ca,
        "server": ca.issue("server", server=True),
        "client": ca.issue("client", server=False),
        "rogue_client": other_ca.issue("rogue-client", server=False),
        "other_ca": other_ca,
    }


def _server(model_root, tmp_path, **settings) -> InProcessModelServer:
    options = ServerOptions(
        model_name="half_plus_two", model_base_path=str(model_root / "half_plus_two"), **settings
    )
    return InProcessModelServer(options)


def _https_ready(url: str, **client_args) -> None:
    def ready() -> bool:
        try:
            response = httpx.get(
                f"{url}/v1/models/half_plus_two/versions/123", timeout=2, **client_args
            )
        except httpx.HTTPError:
            return False
        return response.status_code == 200 and "AVAILABLE" in response.text

    wait_until(ready, 60, interval=0.1, what="half_plus_two over HTTPS")


def _predict_rest(url: str, **client_args) -> httpx.Response:
    return httpx.post(
        f"{url}/v1/models/half_plus_two:predict",
        json={"instances": [2.0]},
        timeout=5,
        **client_args,
    )


def _grpc_predict(channel: grpc.Channel, metadata=None):
    prediction, _ = clients.stubs(channel)
    return prediction.Predict(clients.predict_request("half_plus_two"), 10, metadata=metadata)


def _grpc_fails(channel: grpc.Channel) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        _grpc_predict(channel)
    return info.value.code()


def _context(ca_path, cert=None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_path))
    if cert is not None:
        context.load_cert_chain(str(cert.cert_path), str(cert.key_path))
    return context


def test_tls_on_rest_and_grpc(pki, model_root, tmp_path):
    config = tmp_path / "ssl.config"
    config.write_text(ssl_config_text(pki["server"], None, client_verify=False))
    server = _server(model_root, tmp_path, ssl_config_file=str(config))
    server.server.start()
    server._thread.start()
    try:
        url = server.url.replace("http://", "https://")
        trusted = _context(pki["ca"].cert_path)
        _https_ready(url, verify=trusted)
        assert _predict_rest(url, verify=trusted).json() == {"predictions": [3.0]}
        # Plaintext and untrusted clients fail.
        with pytest.raises(httpx.HTTPError):
            _predict_rest(server.url)
        with pytest.raises(httpx.HTTPError):
            _predict_rest(url, verify=_context(pki["other_ca"].cert_path))

        target = f"127.0.0.1:{server.server.options.port}"
        credentials = grpc.ssl_channel_credentials(pki["ca"].cert_pem.encode())
        with grpc.secure_channel(target, credentials) as channel:
            assert list(_grpc_predict(channel).outputs["y"].float_val) == [3.0]
        with grpc.insecure_channel(target) as channel:
            assert _grpc_fails(channel) == grpc.StatusCode.UNAVAILABLE
        untrusted = grpc.ssl_channel_credentials(pki["other_ca"].cert_pem.encode())
        with grpc.secure_channel(target, untrusted) as channel:
            assert _grpc_fails(channel) == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()


def test_mutual_tls_requires_a_client_certificate_signed_by_custom_ca(pki, model_root, tmp_path):
    config = tmp_path / "ssl.config"
    config.write_text(ssl_config_text(pki["server"], pki["ca"], client_verify=True))
    server = _server(model_root, tmp_path, ssl_config_file=str(config))
    server.server.start()
    server._thread.start()
    try:
        url = server.url.replace("http://", "https://")
        with_cert = _context(pki["ca"].cert_path, pki["client"])
        _https_ready(url, verify=with_cert)
        assert _predict_rest(url, verify=with_cert).json() == {"predictions": [3.0]}
        with pytest.raises(httpx.HTTPError):
            _predict_rest(url, verify=_context(pki["ca"].cert_path))
        with pytest.raises(httpx.HTTPError):
            _predict_rest(url, verify=_context(pki["ca"].cert_path, pki["rogue_client"]))

        target = f"127.0.0.1:{server.server.options.port}"
        ca = pki["ca"].cert_pem.encode()
        client = pki["client"]
        credentials = grpc.ssl_channel_credentials(
            ca, client.key_pem.encode(), client.cert_pem.encode()
        )
        with grpc.secure_channel(target, credentials) as channel:
            assert list(_grpc_predict(channel).outputs["y"].float_val) == [3.0]
        with grpc.secure_channel(target, grpc.ssl_channel_credentials(ca)) as channel:
            assert _grpc_fails(channel) == grpc.StatusCode.UNAVAILABLE
        rogue = pki["rogue_client"]
        rogue_credentials = grpc.ssl_channel_credentials(
            ca, rogue.key_pem.encode(), rogue.cert_pem.encode()
        )
        with grpc.secure_channel(target, rogue_credentials) as channel:
            assert _grpc_fails(channel) == grpc.StatusCode.UNAVAILABLE
    finally:
        server.stop()


def test_bearer_token_on_rest_and_grpc_with_open_health_endpoints(model_root, tmp_path):
    token_file = tmp_path / "tokens"
    token_file.write_text(f"# rotated monthly\nold-token\n{TOKEN}\n")
    with _server(model_root, tmp_path, auth_token_file=str(token_file)) as server:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        wait_until(
            lambda: (
                "AVAILABLE"
                in httpx.get(f"{server.url}/v1/models/half_plus_two", headers=headers).text
            ),
            60,
        )
        assert httpx.get(f"{server.url}/healthz").status_code == 200
        assert httpx.get(f"{server.url}/readyz").status_code == 200
        for bad in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            response = httpx.post(
                f"{server.url}/v1/models/half_plus_two:predict",
                json={"instances": [2.0]},
                headers=bad,
            )
            assert response.status_code == 401
            assert "bearer token" in response.json()["error"]
            assert response.headers["www-authenticate"] == "Bearer"
        assert _predict_rest(server.url, headers=headers).json() == {"predictions": [3.0]}
        assert (
            _predict_rest(server.url, headers={"Authorization": "Bearer old-token"}).status_code
            == 200
        )

        with grpc.insecure_channel(f"127.0.0.1:{server.server.options.port}") as channel:
            with pytest.raises(grpc.RpcError) as info:
                _grpc_predict(channel)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.RpcError) as info:
                _grpc_predict(channel, metadata=[("authorization", "Bearer wrong")])
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            answer = _grpc_predict(channel, metadata=[("authorization", f"Bearer {TOKEN}")])
            assert list(answer.outputs["y"].float_val) == [3.0]


def test_request_size_limits_and_name_checks(model_root, tmp_path):
    with _server(model_root, tmp_path, max_request_size_bytes=10_000) as server:
        wait_until(
            lambda: "AVAILABLE" in httpx.get(f"{server.url}/v1/models/half_plus_two").text, 60
        )
        big = {"instances": [1.0] * 5000}
        response = httpx.post(f"{server.url}/v1/models/half_plus_two:predict", json=big)
        assert response.status_code == 413
        assert "--max_request_size_bytes" in response.json()["error"]
        assert _predict_rest(server.url).json() == {"predictions": [3.0]}

        with grpc.insecure_channel(f"127.0.0.1:{server.server.options.port}") as channel:
            prediction, _ = clients.stubs(channel)
            with pytest.raises(grpc.RpcError) as info:
                prediction.Predict(clients.predict_request("half_plus_two", [1.0] * 5000), 10)
            assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert list(_grpc_predict(channel).outputs["y"].float_val) == [3.0]

        for name in ("..", "%2Fetc%2Fpasswd", "a%00b", "x" * 300):
            response = httpx.post(
                f"{server.url}/v1/models/{name}:predict", json={"instances": [1.0]}
            )
            assert response.status_code == 400, name
            assert response.json()["error"].startswith("Invalid model name")
        response = httpx.get(f"{server.url}/v1/models/half_plus_two/labels/a%2Fb")
        assert response.status_code == 400
