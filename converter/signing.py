"""Sign the published ONNX file with OpenSSF model signing (the ``model-signing`` package).

``key``: an elliptic-curve private key, PEM, from the ``ONNX_CONVERT_SIGNING_KEY`` environment
variable (a secret in a workflow; never an option, so it never reaches the report's command).
``sigstore``: keyless, with the workflow's OIDC identity (GitHub: ``permissions: id-token:
write``); it needs Sigstore's public services, so it is not exercised by the tests here.

Everything that can be checked is checked before the conversion (``check_signing``); the file is
signed only when the run passed, and the signature is written beside it as ``<name>.sig``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from converter.errors import ConversionError, UserError, describe

KEY_VARIABLE = "ONNX_CONVERT_SIGNING_KEY"
_OIDC_VARIABLES = ("ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN")
_INSTALL = "install the signing extra (pip install -c requirements/constraints.txt '.[signing]'; the full image has it)"


def check_signing(method: str, env: Mapping[str, str] | None = None) -> None:
    """Raise UserError, before any work, when signing with ``method`` cannot succeed here."""
    if method == "none":
        return
    env = os.environ if env is None else env
    try:
        import model_signing  # noqa: F401
    except ImportError as exc:
        raise UserError(f"--sign {method} needs the model-signing package ({describe(exc)})", _INSTALL) from None
    if method == "key":
        _private_key(env)
    elif method == "sigstore" and not all(env.get(v) for v in _OIDC_VARIABLES) and not env.get("SIGSTORE_ID_TOKEN"):
        raise UserError(
            "--sign sigstore: no OIDC identity to sign with (ACTIONS_ID_TOKEN_REQUEST_URL is not set)",
            "in GitHub Actions give the job permissions: id-token: write; elsewhere set SIGSTORE_ID_TOKEN",
        )


def sign(method: str, files: list[Path], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Sign ``files`` (the .onnx first; more than one: their folder, which holds nothing else) and
    write ``<.onnx name>.sig`` beside them; returns what the report records."""
    env = os.environ if env is None else env
    import model_signing

    target = files[0] if len(files) == 1 else files[0].parent
    signature = files[0].with_name(files[0].name + ".sig")
    config = model_signing.signing.Config()
    try:
        if method == "key":
            with _key_file(_private_key(env)) as key:
                config.use_elliptic_key_signer(private_key=key).sign(target, signature)
        else:
            token = env.get("SIGSTORE_ID_TOKEN") or None
            config.use_sigstore_signer(use_ambient_credentials=token is None, identity_token=token).sign(
                target, signature
            )
    except (OSError, ValueError, RuntimeError) as exc:
        signature.unlink(missing_ok=True)
        raise ConversionError(f"signing {files[0].name} with --sign {method} failed: {describe(exc)}") from None
    return {"method": method, "file": signature.name, "signed": files[0].name if len(files) == 1 else "."}


def _private_key(env: Mapping[str, str]) -> bytes:
    """The PEM private key, checked (an elliptic-curve key, unencrypted); its text is never shown."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    text = env.get(KEY_VARIABLE, "")
    if not text.strip():
        raise UserError(
            f"--sign key: the environment variable {KEY_VARIABLE} is empty",
            f"set it to the PEM private key (in a workflow: env: {KEY_VARIABLE}: ${{{{ secrets.MODEL_SIGNING_KEY }}}})",
        )
    try:
        key = load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError) as exc:
        reason = "it is encrypted" if "password" in str(exc).lower() else "it is not a PEM private key"
        raise UserError(
            f"--sign key: {KEY_VARIABLE} cannot be used ({reason})",
            "give an unencrypted PEM elliptic-curve private key",
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise UserError(
            f"--sign key: {KEY_VARIABLE} holds a {type(key).__name__.removeprefix('_')} key, and model signing takes an elliptic-curve key",
            "make one with: openssl ecparam -name prime256v1 -genkey -noout -out key.pem",
        )
    return text.encode()


@contextlib.contextmanager
def _key_file(pem: bytes) -> Iterator[Path]:
    """The key in a file only this user can read (mkstemp: mode 0600), for as long as model_signing needs it."""
    handle, name = tempfile.mkstemp(prefix="onnx-convert-key-", suffix=".pem")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(pem)
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)
