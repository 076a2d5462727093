"""--sign key end to end: sign the published file, verify it with the public key, tamper, verify fails.

Needs the signing extra (model-signing); `make test` installs it. Without it the tests skip, and
fail under CI=true, where a skip would hide that signing was never tested. Keyless signing
(--sign sigstore) needs Sigstore's public services, which these machines cannot reach: only its
refusal without an OIDC identity is tested here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from converter.signing import KEY_VARIABLE
from tests.fixtures.signing import require


@pytest.fixture
def keys(tmp_path: Path) -> tuple[str, Path]:
    """An elliptic-curve private key (PEM text) and its public key's file."""
    require("model_signing")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = tmp_path / "key.pub"
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return private, public


@pytest.fixture
def model(tmp_path: Path, iris_skops: Path) -> Path:
    path = tmp_path / "iris.skops"
    path.write_bytes(iris_skops.read_bytes())
    return path


def verify(onnx: Path, public: Path) -> None:
    model_signing = require("model_signing")
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=public).verify(
        onnx, onnx.with_name(onnx.name + ".sig")
    )


def test_a_signed_file_verifies_with_the_public_key_and_not_once_tampered_with(
    run_cli, model: Path, keys: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = keys
    monkeypatch.setenv(KEY_VARIABLE, private)
    result = run_cli("--model-path", str(model), "--sign", "key")
    assert result.code == 0, result.stderr
    assert result.written() == ["iris.onnx", "iris.onnx.sig", "iris.report.json", "iris.report.md"]
    report = result.report("iris")
    assert report["provenance"]["signature"] == {"method": "key", "file": "iris.onnx.sig", "signed": "iris.onnx"}
    onnx = result.output_dir / "iris.onnx"
    verify(onnx, public)
    # the key is in no file and no line the run wrote
    assert "PRIVATE KEY" not in result.stdout + result.stderr
    assert not any("PRIVATE KEY" in p.read_text(errors="ignore") for p in result.output_dir.iterdir())

    onnx.write_bytes(onnx.read_bytes() + b"\0")
    with pytest.raises(ValueError, match="Signature mismatch"):
        verify(onnx, public)


def test_a_file_that_fails_validation_is_not_signed(
    run_cli, model: Path, keys: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_VARIABLE, keys[0])
    result = run_cli("--model-path", str(model), "--sign", "key", "--atol", "0", "--rtol", "0")
    assert result.code == 1
    assert "iris.onnx.sig" not in result.written()
    assert result.report("iris")["provenance"]["signature"] == {}


@pytest.mark.parametrize(
    ("key", "error"),
    [
        (
            "",
            f"error: --sign key: the environment variable {KEY_VARIABLE} is empty; set it to the PEM private key "
            f"(in a workflow: env: {KEY_VARIABLE}: ${{{{ secrets.MODEL_SIGNING_KEY }}}})\n",
        ),
        (
            "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
            f"error: --sign key: {KEY_VARIABLE} cannot be used (it is not a PEM private key); "
            "give an unencrypted PEM elliptic-curve private key\n",
        ),
        (
            "rsa",
            f"error: --sign key: {KEY_VARIABLE} holds a RSAPrivateKey key, and model signing takes an elliptic-curve "
            "key; make one with: openssl ecparam -name prime256v1 -genkey -noout -out key.pem\n",
        ),
    ],
    ids=["empty", "not-a-key", "rsa"],
)
def test_an_unusable_key_is_one_error_line_before_any_work(
    run_cli, model: Path, monkeypatch: pytest.MonkeyPatch, key: str, error: str
) -> None:
    require("model_signing")
    if key == "rsa":
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
            .decode()
        )
    monkeypatch.setenv(KEY_VARIABLE, key)
    result = run_cli("--model-path", str(model), "--sign", "key")
    assert result.code == 2
    assert result.errors == error
    assert result.written() == []


def test_keyless_signing_without_an_oidc_identity_is_refused(
    run_cli, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require("model_signing")
    for variable in ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "SIGSTORE_ID_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    result = run_cli("--model-path", str(model), "--sign", "sigstore")
    assert result.code == 2
    assert result.errors == (
        "error: --sign sigstore: no OIDC identity to sign with (ACTIONS_ID_TOKEN_REQUEST_URL is not set); "
        "in GitHub Actions give the job permissions: id-token: write; elsewhere set SIGSTORE_ID_TOKEN\n"
    )
